"""A sleep that many tasks share one trio deadline for.

``trio.sleep_until`` opens a cancel scope with a deadline and waits for it
to expire: every wake-up registers a deadline, raises ``Cancelled`` inside
the sleeper, unwinds it and closes the scope. That is right for one task
and costly for thousands of timed streams each ticking every 100 ms (a
cancel scope, an exception and its traceback per tick; in a profile of
flowkit serving 500 timed streams, the tool's ``sleep_until`` was most of
trio's deadline share). :func:`sleep_until` keeps one heap of deadlines per
trio run and one system task that sleeps until the earliest; a sleeper parks
with :func:`trio.lowlevel.wait_task_rescheduled` and is rescheduled when its
deadline passes, with no exception raised and no scope of its own. A batch of
sleepers due together costs the service one wake-up.

The contract is ``trio.sleep_until``'s: it always checkpoints, never returns
before ``deadline`` (by ``trio.current_time()``, so a ``MockClock`` drives it
as it drives trio's own sleeps), and a cancellation of the sleeper ends it at
once with ``Cancelled``. Sleepers due at the same time are rescheduled in the
order they went to sleep (trio may still run a batch in any order).
"""

from __future__ import annotations

import heapq
import itertools
import math

import trio
from trio.lowlevel import Abort, RaiseCancelT, RunVar, Task

__all__ = ["sleep_until"]


class _Sleeper:
    """One parked task; ``task`` is ``None`` once it was woken or cancelled.

    It is its own ``wait_task_rescheduled`` abort callback: a sleeping task
    holds no bound method or ``functools.partial`` for it (a partial with
    its empty keywords dict is ~190 bytes; this costs one slot).
    """

    __slots__ = ("task", "timer")

    def __init__(self, task: Task, timer: _Timer) -> None:
        self.task: Task | None = task
        self.timer = timer

    def __call__(self, _raise_cancel: RaiseCancelT) -> Abort:
        self.timer.cancel(self)
        return Abort.SUCCEEDED


class _Timer:
    """The heap of one trio run's shared sleeps, and the system task that serves it."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, _Sleeper]] = []
        self.order = itertools.count()
        self.scope: trio.CancelScope | None = None  # the service's sleep, while it sleeps
        self.cancelled = 0  # entries of cancelled sleepers still in the heap

    def add(self, deadline: float, sleeper: _Sleeper) -> None:
        heapq.heappush(self.heap, (deadline, next(self.order), sleeper))
        if self.scope is not None and deadline < self.scope.deadline:
            self.scope.deadline = deadline  # wake the service earlier

    def cancel(self, sleeper: _Sleeper) -> None:
        """Forget a cancelled sleeper; its entry goes when due, or in a rebuild.

        Rebuilding once half the heap is cancelled keeps memory bounded by
        the live sleepers (a long sleep cancelled a million times would
        otherwise hold a million entries until its deadline), at O(1)
        amortized per cancel.
        """
        sleeper.task = None
        self.cancelled += 1
        if self.cancelled > 64 and 2 * self.cancelled > len(self.heap):
            self.heap[:] = [entry for entry in self.heap if entry[2].task is not None]
            heapq.heapify(self.heap)
            self.cancelled = 0

    async def serve(self) -> None:
        heap = self.heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                sleeper = heapq.heappop(heap)[2]
                task, sleeper.task = sleeper.task, None
                if task is None:
                    self.cancelled -= 1
                else:
                    trio.lowlevel.reschedule(task)
            while heap and heap[0][2].task is None:  # cancelled at the head: drop
                heapq.heappop(heap)
                self.cancelled -= 1
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as self.scope:
                await trio.sleep_forever()
            self.scope = None


_TIMER: RunVar[_Timer] = RunVar("flowkit_timer")


def _timer() -> _Timer:
    try:
        return _TIMER.get()
    except LookupError:
        timer = _Timer()
        _TIMER.set(timer)
        trio.lowlevel.spawn_system_task(timer.serve, name="flowkit.sleep_until timer")
        return timer


async def sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` (``trio.current_time()`` units), sharing one trio deadline.

    Equivalent to ``trio.sleep_until(deadline)`` (the same checkpoint, the
    same cancellation), and cheaper when many tasks sleep at once: use it in
    a tool or source that ticks on a schedule (``docs/operators.md``).

    Raises:
        ValueError: ``deadline`` is NaN.
    """
    if math.isnan(deadline):
        raise ValueError("deadline must not be NaN")
    if deadline <= trio.current_time():
        await trio.lowlevel.checkpoint()
        return
    timer = _timer()
    sleeper = _Sleeper(trio.lowlevel.current_task(), timer)
    timer.add(deadline, sleeper)
    await trio.lowlevel.wait_task_rescheduled(sleeper)
