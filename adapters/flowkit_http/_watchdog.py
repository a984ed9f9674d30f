"""A watchdog for the event loop: log every stretch a task held it too long.

trio runs one task step at a time on one thread; a step that does not
return to the scheduler (a quadratic regex, a CPU-bound loop, a blocking
call) freezes every connection, the keepalives and the signal handler with
it. A watchdog *thread* cannot see this as it happens: ``re`` and most
pure-Python work hold the GIL, so the thread would not run until the
stretch is over. :class:`Watchdog` is a ``trio.abc.Instrument`` instead: it
times each task step on a clock (``time.perf_counter``, the wall clock that
blocking spends, not trio's) and, when a step took longer than
``threshold``, logs it afterwards, naming the task and the tool call it
belongs to (tool calls run in tasks named ``tool <name>``; a pipeline
stage's task is found under its call's task).

``flowkit serve --watchdog S`` installs one; a server of your own adds it
with ``trio.lowlevel.add_instrument``. It is off by default: with any
instrument hooking task steps, trio dispatches two calls per step, ~1.5 µs
each here, against ~5 µs for a bare step (measured on 200,000 checkpoints;
5-25 % on a 60,000-event ``ticker`` run in one process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

__all__ = ["TOOL_TASK_PREFIX", "Watchdog"]

logger = logging.getLogger("flowkit_http")

TOOL_TASK_PREFIX = "tool "
"""Tool calls run in tasks named ``tool <tool name>``."""


def _tool_of(task: trio.lowlevel.Task) -> str | None:
    """The tool whose call ``task`` is, or runs under."""
    current: trio.lowlevel.Task | None = task
    while current is not None:
        if current.name.startswith(TOOL_TASK_PREFIX):
            return current.name[len(TOOL_TASK_PREFIX) :]
        nursery = current.parent_nursery
        current = nursery.parent_task if nursery is not None else None
    return None


class Watchdog(trio.abc.Instrument):
    """Logs each task step longer than ``threshold`` seconds, and counts them.

    Args:
        threshold: the longest a step may hold the event loop unremarked.
        clock: seconds as a float; ``time.perf_counter`` unless a test
            injects its own.

    Attributes:
        stretches: how many steps overran so far.
        longest: the longest step seen so far, in seconds.
    """

    def __init__(
        self, threshold: float = 0.25, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.stretches = 0
        self.longest = 0.0
        self._clock = clock
        # None until a step starts: an instrument added by a running task
        # sees that task's step end without having seen it start.
        self._started: float | None = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = self._clock()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._started is None:
            return
        took = self._clock() - self._started
        if took <= self.threshold:
            return
        self.stretches += 1
        self.longest = max(self.longest, took)
        tool = _tool_of(task)
        where = f" (tool {tool!r})" if tool is not None else ""
        logger.warning("event loop blocked for %.0f ms by task %r%s", took * 1000, task.name, where)
