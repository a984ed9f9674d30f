"""Rate-limited logging: a flood of one kind of line becomes a summary per interval.

A server that logs one line per refused request or per failed call writes as
many lines as a hostile (or broken) client sends requests: 19,000 in a session
flood, each failing tool call a traceback. :class:`RateLimitedLog` keeps the
first occurrence of each *reason* in full (message and traceback) and folds
its repeats into one summary line per interval, with a count per reason::

    flowkit_http: repeated in the last 10 s: tool 'fetch' failed: TimeoutError x41; refused (429) x18000

The interval is a window opened by the first line logged in full. When it
ends (a trio system task sleeps until then, so the summary comes even if the
flood stopped), the reasons that repeated are summarised and stay folded for
one more interval; a reason quiet for a whole interval is logged in full
again when it comes back. When the trio run ends (the task is cancelled), the
pending summary is written at once: no count is lost.

Every method must be called from inside ``trio.run``: the clock is trio's
(``MockClock`` in tests) and the summary task is a trio system task. Reasons
must have bounded cardinality (a tool's name, an exception type, a status
code; never a session id or client input).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import trio

from flowkit.mcp import RemoteProtocolError

__all__ = ["RateLimitedLog", "adapter_log", "log_refusal", "log_tool_failure"]


class RateLimitedLog:
    """Log through ``logger``, folding repeats of a reason within ``interval``.

    Example (a refusal; the reason names the kind, the message the case)::

        adapter_log.log(logging.WARNING, "refused (503)", "MCP request refused: %s", error)

    Args:
        logger: where every line goes (the summary too).
        interval: seconds a window lasts; at most one summary line per window.
        clock: the time source, ``trio.current_time`` by default.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._window_end: float | None = None
        # Reasons whose next occurrence is folded (seen in full this window,
        # or repeated in the last one), and how often each was folded.
        self._folded: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._levels: dict[str, int] = {}
        self._summarising = False

    def log(
        self,
        level: int,
        reason: str,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> None:
        """Log ``message % args`` in full, or count it if ``reason`` repeats.

        ``exc_info`` adds the exception's traceback to the full line.
        """
        if self._window_end is not None and self.clock() >= self._window_end:
            # The summary task has not run yet (it is due): close the window
            # here so that lines keep their order.
            self._close_window()
        if reason in self._folded:
            self._counts[reason] += 1
            self._levels[reason] = max(level, self._levels.get(reason, level))
            return
        self._folded.add(reason)
        if self._window_end is None:
            self._window_end = self.clock() + self.interval
            if not self._summarising:
                self._summarising = True
                trio.lowlevel.spawn_system_task(self._summarise, name="flowkit_http log summary")
        self.logger.log(level, message, *args, exc_info=exc_info)

    def _close_window(self) -> None:
        """Write the window's summary; keep folding the reasons that repeated."""
        if self._counts:
            counts = "; ".join(f"{reason} x{n}" for reason, n in self._counts.items())
            self.logger.log(
                max(self._levels.values()),
                "repeated in the last %g s: %s",
                self.interval,
                counts,
            )
            assert self._window_end is not None
            self._window_end += self.interval
            self._folded = set(self._counts)
        else:
            self._window_end = None
            self._folded = set()
        self._counts = Counter()
        self._levels = {}

    async def _summarise(self) -> None:
        """Close each window when it ends, until one passes without repeats."""
        try:
            while self._window_end is not None:
                await trio.sleep_until(self._window_end)
                if self._window_end is not None and self.clock() >= self._window_end:
                    self._close_window()
        finally:
            # The run is ending (cancelled): write what is pending, and start
            # afresh (a later trio.run has a clock of its own).
            if self._counts:
                self._close_window()
            self._window_end = None
            self._folded = set()
            self._summarising = False


adapter_log = RateLimitedLog(logging.getLogger("flowkit_http"))
"""The adapter's shared limiter (tool failures, refusals): one summary per 10 s."""


def log_tool_failure(tool: str, exc: BaseException) -> None:
    """A tool call failed (its answer is an ``isError`` result): ERROR, with the traceback."""
    kind = type(exc).__name__
    try:
        text = str(exc)
    except Exception:  # an exception that cannot describe itself still gets its line
        text = f"<unprintable {kind}>"
    adapter_log.log(
        logging.ERROR,
        f"tool {tool!r} failed: {kind}",
        "tool %r failed: %s: %s",
        tool,
        kind,
        text,
        exc_info=exc,
    )


def log_refusal(error: RemoteProtocolError) -> None:
    """A request refused for want of capacity (5xx, 429): WARNING, folded by kind and status.

    The reason is the refusal's :data:`~flowkit.mcp.REFUSALS` row and status,
    never its message (which may quote client input): a flood of 503s is one
    line, then ``refused 503 busy x19000`` per interval.
    """
    reason = f"refused {error.http_status} {error.kind or error.code}"
    adapter_log.log(logging.WARNING, reason, "MCP request refused: %s", error)
