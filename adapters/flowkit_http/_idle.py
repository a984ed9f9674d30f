"""Every connection's keep-alive timer on one task, for ``flowkit serve``.

hypercorn (0.18) times a kept-alive connection with a ``TrioSingleTask``:
each time the connection goes idle (accepted, a response ended) it starts a
task with ``nursery.start`` that sleeps ``keep_alive_timeout`` in a cancel
scope, and each request head cancels that task again. Per request that is a
task spawned and started (the caller waits for it to run), a lock, a cancel
scope, a ``Cancelled`` raised and unwound, and the task's exit: about 60 µs
of CPU per restart and stop on the 2-core benchmark host, as much as h11's
parse of the request, paid on the event loop between a call's request and
its first write (docs/benchmarks.md, "The keep-alive timer").

:class:`IdleTimers` keeps those deadlines in one heap served by one task per
server (:meth:`IdleTimers.serve`). A connection's :class:`IdleTimer` has the
interface hypercorn calls (``restart(task_group, action)`` and ``stop()``);
both are a few attribute writes and at most a heap push, with no task, no
scope and no schedule point. Only a timer that fires costs a task: its
``action`` (the connection's close) is started in the connection's own task
group, as hypercorn's would run there. Every deadline is ``now +
keep_alive_timeout``, so a deadline that moves only moves later; its heap
entry stays where it is and is pushed again with the new deadline when the
old one comes up (one entry per timer at most, so the heap is bounded by the
connections). A shutdown (:meth:`IdleTimers.terminate`) fires every timer
that is running, and any restarted after it, at once: hypercorn's timer
waits on ``context.terminated`` for the same reason.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["IdleTimer", "IdleTimers"]

Action = Callable[[], Awaitable[None]]


class IdleTimer:
    """One connection's keep-alive timer (hypercorn's ``SingleTask`` protocol)."""

    __slots__ = ("action", "deadline", "group", "queued", "timers")

    def __init__(self, timers: IdleTimers) -> None:
        self.timers = timers
        self.deadline: float | None = None  # None: stopped
        self.queued = False  # it has an entry in the heap
        self.group: Any = None  # hypercorn's TaskGroup of the connection
        self.action: Action | None = None

    async def restart(self, task_group: Any, action: Action) -> None:
        """Run ``action`` in ``task_group`` once idle for ``keep_alive_timeout`` (from now).

        Not a schedule point, unlike hypercorn's: nothing here waits.
        """
        self.group, self.action = task_group, action
        self.timers.arm(self)

    async def stop(self) -> None:
        """The connection is busy (or gone): the timer does not fire."""
        self.deadline = None
        self.group = self.action = None  # a closed connection is not held until the deadline

    def fire(self) -> None:
        """Start the action in the connection's task group (it is due, or a shutdown)."""
        group, action = self.group, self.action
        self.deadline = None
        self.group = self.action = None
        nursery = getattr(group, "_nursery", None)
        if nursery is None or action is None:
            return
        with contextlib.suppress(RuntimeError):  # its tasks are over: nothing to close
            nursery.start_soon(action)


class IdleTimers:
    """The keep-alive deadlines of one server's connections, served by one task.

    Args:
        timeout: seconds a connection may stay idle (hypercorn's
            ``keep_alive_timeout``).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.heap: list[tuple[float, int, IdleTimer]] = []
        self.order = itertools.count()
        self.scope: trio.CancelScope | None = None  # the service's wait, while it waits
        self.terminated = False

    def timer(self) -> IdleTimer:
        """A timer for one new connection (stopped until its first ``restart``)."""
        return IdleTimer(self)

    def arm(self, timer: IdleTimer) -> None:
        """(Re)start ``timer``: due ``timeout`` seconds from now."""
        if self.terminated:
            timer.fire()
            return
        deadline = trio.current_time() + self.timeout
        timer.deadline = deadline
        if timer.queued:
            return  # its entry is earlier: pushed again with this deadline when it comes up
        timer.queued = True
        heapq.heappush(self.heap, (deadline, next(self.order), timer))
        scope = self.scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline  # the service was waiting for nothing sooner

    def terminate(self) -> None:
        """A shutdown: fire every running timer now, and any restarted from now on."""
        self.terminated = True
        if self.scope is not None:
            self.scope.cancel()

    def _due(self) -> None:
        now = trio.current_time()
        heap = self.heap
        while heap and (self.terminated or heap[0][0] <= now):
            _, _, timer = heapq.heappop(heap)
            deadline = timer.deadline
            if deadline is None:
                timer.queued = False  # stopped
            elif deadline > now and not self.terminated:
                heapq.heappush(heap, (deadline, next(self.order), timer))  # restarted since
            else:
                timer.queued = False
                timer.fire()

    async def serve(self) -> None:
        """Fire each timer at its deadline, until cancelled."""
        while True:
            self._due()
            if self.terminated:
                await trio.sleep_forever()  # from now on a restart fires at once (arm)
            deadline = self.heap[0][0] if self.heap else math.inf
            with trio.CancelScope(deadline=deadline) as self.scope:
                await trio.sleep_forever()
            self.scope = None
