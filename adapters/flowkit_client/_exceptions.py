"""Every error the client raises, as one tree.

::

    ClientError                  anything this client raises on purpose
    ├── TransportError           the HTTP exchange failed below MCP
    │   ├── ConnectError         could not reach the server
    │   └── StreamCut            a call's stream ended before its result and
    │                            cannot be resumed (always, in 2026-07-28:
    │                            closing the stream cancelled the call)
    ├── TimeoutError             a deadline passed (also a builtin ``TimeoutError``)
    │   ├── ConnectTimeout       connecting took longer than ``Timeouts.connect``
    │   ├── ReadTimeout          nothing arrived for ``Timeouts.read``
    │   └── CallTimeout          the call as a whole outlasted its ``timeout``
    ├── ProtocolError            the server broke the protocol
    │   ├── HTTPStatusError      an HTTP status MCP gives no meaning to here
    │   └── ResumeFailed         every reconnection attempt of a resumable
    │                            stream failed (``RetryPolicy.max_attempts``)
    ├── RPCError                 the server answered with a JSON-RPC error
    │   └── SessionExpired       404 on a session: the server forgot it
    └── ToolError                ``ToolResult.raise_for_error()`` on ``isError``

httpx's own exceptions never escape: they are translated in one place
(``_transport.translated``) with the original as ``__cause__``. A server's
refusal of a request is an :class:`RPCError` carrying the JSON-RPC ``code``,
``message`` and ``data`` and the HTTP status; a tool that *ran* and failed is
not an exception by default (its result has ``is_error``), because a failed
tool call is a normal answer in MCP, for the model to read.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "CallTimeout",
    "ClientError",
    "ConnectError",
    "ConnectTimeout",
    "HTTPStatusError",
    "ProtocolError",
    "RPCError",
    "ReadTimeout",
    "ResumeFailed",
    "SessionExpired",
    "StreamCut",
    "TimeoutError",
    "ToolError",
    "TransportError",
]


class ClientError(Exception):
    """Base of every error the client raises."""


class TransportError(ClientError):
    """The HTTP exchange failed below MCP (connection refused, reset, cut)."""


class ConnectError(TransportError):
    """The server could not be reached."""


class StreamCut(TransportError):
    """A call's response stream ended before its result, and will not be resumed.

    In the 2026-07-28 era a closed stream *is* a cancellation, so the call is
    gone and retrying it on our own could run it twice; in the 2025-11-25 era
    this is raised only when the stream had no event id to resume from.
    """


class TimeoutError(ClientError, builtins.TimeoutError):
    """A deadline passed; also a builtin ``TimeoutError`` for generic handlers."""


class ConnectTimeout(TimeoutError):
    """Connecting took longer than ``Timeouts.connect``."""


class ReadTimeout(TimeoutError):
    """Nothing arrived (not even a keepalive) for ``Timeouts.read`` seconds."""


class CallTimeout(TimeoutError):
    """The call outlasted its ``timeout``; it was cancelled."""


class ProtocolError(ClientError):
    """The server broke the protocol (a reply we cannot read, a bad status)."""


class HTTPStatusError(ProtocolError):
    """An HTTP status without a JSON-RPC error body we could read.

    Attributes:
        status_code: the HTTP status.
    """

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ResumeFailed(ProtocolError):
    """A resumable stream could not be resumed within ``RetryPolicy.max_attempts``."""


class RPCError(ClientError):
    """The server answered a request with a JSON-RPC error.

    Attributes:
        code: the JSON-RPC error code (``-32602`` for an unknown tool, ...).
        message: the error message.
        data: the error's ``data`` member, if any.
        status_code: the HTTP status it came with (200 for an error on a stream).
    """

    def __init__(
        self, code: int, message: str, data: Any = None, *, status_code: int = 200
    ) -> None:
        http = f", HTTP {status_code}" if status_code != 200 else ""
        super().__init__(f"{message} (JSON-RPC error {code}{http})")
        self.code = code
        self.message = message
        self.data = data
        self.status_code = status_code


class SessionExpired(RPCError):
    """The server answered 404 on our session: it ended or expired (reconnect)."""


class ToolError(ClientError):
    """A tool's result had ``isError: true`` (raised by ``ToolResult.raise_for_error``).

    Attributes:
        result: the :class:`~flowkit_client.ToolResult`.
    """

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result
