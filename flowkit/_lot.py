"""A parking lot for the waits that thousands of idle streams hold at once.

:class:`trio.lowlevel.ParkingLot` is what trio's own channels wait on. An
idle open stream parks one task on it for as long as it is open (the
writer waiting for its next event), and the parked wait costs more than
the stream's state: trio's lot keeps an ``OrderedDict`` (~380 bytes with
one task), ``park`` is a coroutine frame of its own, and its abort callback
is a closure with its cells. :class:`Lot` keeps the same FIFO semantics in
a list (~90 bytes with one task; a lot here holds a channel's few
receivers or senders, so a cancel's linear removal is short), and
:meth:`Lot.park` is not a coroutine: it returns trio's
``wait_task_rescheduled`` awaitable, so the waiting task's stack is one
frame shorter, and the abort callback is a two-slot object (~50 bytes; a
``functools.partial`` with its empty keywords dict is ~190)
(docs/benchmarks.md, "Where an idle stream's bytes go").

It is the subset of ``ParkingLot`` that flowkit's channels and outboxes
use: ``park``, ``unpark``, ``unpark_all``, ``len`` and truth. No
``repark`` or ``break_lot``.
"""

from __future__ import annotations

from collections.abc import Awaitable

from trio.lowlevel import Abort, RaiseCancelT, Task, current_task, reschedule, wait_task_rescheduled

__all__ = ["Lot"]


class _Parked:
    """The abort callback of one parked task: a cancel takes it out of its lot."""

    __slots__ = ("lot", "task")

    def __init__(self, lot: Lot, task: Task) -> None:
        self.lot = lot
        self.task = task

    def __call__(self, _raise_cancel: RaiseCancelT) -> Abort:
        self.lot.remove(self.task)
        return Abort.SUCCEEDED


class Lot(list[Task]):
    """Tasks waiting for something, woken first come, first served.

    The list of the waiting tasks itself, oldest first (no wrapper object,
    and ``len`` and truth, asked at every send and take of a channel, are
    the list's own C slots). Change it only through its methods.
    """

    __slots__ = ()

    def park(self) -> Awaitable[None]:
        """Park the calling task until :meth:`unpark` wakes it; await what it returns.

        A checkpoint, as ``ParkingLot.park``: a cancel takes the task out of
        the lot. The task is parked when this is called, not when awaited:
        await it at once.
        """
        task = current_task()
        self.append(task)
        return wait_task_rescheduled(_Parked(self, task))  # noqa: ASYNC105 (awaited by the caller)

    def unpark(self, *, count: int = 1) -> None:
        """Wake the ``count`` tasks that have waited longest (fewer if fewer wait)."""
        woken = self[:count]
        del self[:count]
        for task in woken:
            reschedule(task)

    def unpark_all(self) -> None:
        """Wake every waiting task."""
        tasks = self[:]
        self.clear()
        for task in tasks:
            reschedule(task)
