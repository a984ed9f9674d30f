"""The flowkit exception tree.

Every error flowkit raises on purpose derives from :class:`FlowkitError`, so
callers can catch "anything flowkit decided" in one place while the original
exceptions of user code (a failing map function, a crashed source) propagate
unchanged::

    FlowkitError
    ├── ContractViolation        an operator broke the operator contract (also AssertionError)
    ├── StreamAborted            downstream view of an upstream crash
    ├── StreamTimeout            also a builtin TimeoutError
    │   ├── InitialTimeout       no first item within the limit
    │   ├── IdleTimeout          gap between two items too long
    │   └── CompletionTimeout    whole stream took too long
    └── ProtocolError            (flowkit.mcp) MCP / HTTP protocol violations
        ├── LocalProtocolError   we misused the protocol core
        └── RemoteProtocolError  the peer sent something invalid
"""

from __future__ import annotations

__all__ = [
    "CompletionTimeout",
    "ContractViolation",
    "FlowkitError",
    "IdleTimeout",
    "InitialTimeout",
    "StreamAborted",
    "StreamTimeout",
]


class FlowkitError(Exception):
    """Base class of every exception flowkit raises deliberately."""


class ContractViolation(FlowkitError, AssertionError):
    """An operator broke a clause of the operator contract.

    Raised by :func:`flowkit.testing.check_operator`, and by an acked
    pipeline (see ``AckTracker``) that is given a stage it cannot see into.
    """


class StreamAborted(FlowkitError):
    """Raised by ``receive`` when the stage feeding the channel crashed.

    Trio's memory channels cannot carry errors: a crashed producer closes its
    end and the consumer sees :class:`trio.EndOfChannel`, indistinguishable
    from success. flowkit channels inside a pipeline deliver this instead, so
    a consumer can never mistake a crash for completion. The original
    exception is ``__cause__``; the pipeline itself re-raises the original.
    """


class StreamTimeout(FlowkitError, TimeoutError):
    """A timeout operator's limit was exceeded.

    Attributes:
        limit: the configured limit in seconds.
    """

    def __init__(self, message: str, *, limit: float) -> None:
        super().__init__(message)
        self.limit = limit


class InitialTimeout(StreamTimeout):
    """The first item did not arrive within the limit."""


class IdleTimeout(StreamTimeout):
    """The gap between two consecutive items exceeded the limit."""


class CompletionTimeout(StreamTimeout):
    """The whole stream did not end within the limit."""
