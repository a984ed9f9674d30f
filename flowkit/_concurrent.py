"""``concurrent_map``: an async function on several items at once.

One task reads upstream and starts a task per item, a second task sends the
results downstream; a semaphore of ``max_concurrent`` permits joins them. A
permit is taken before an item is read and given back only once its result
has been *sent*, so in-flight calls plus finished-but-unsent results never
exceed ``max_concurrent``: the reorder window of the ordered mode is bounded
by the same number, and a stalled downstream stops the reading.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

from ._checks import check_count
from ._operator import CHUNK, Operator, _is_broken, receive_some

__all__ = ["concurrent_map"]

InT = TypeVar("InT")
OutT = TypeVar("OutT")


class _Slot(Generic[OutT]):
    """One call's result, filled in when the call returns."""

    __slots__ = ("done", "value")

    value: OutT

    def __init__(self) -> None:
        self.done = trio.Event()


def _is_async(fn: object) -> bool:
    """Whether calling ``fn`` is known to return a coroutine.

    True for an ``async def``, a :func:`functools.partial` of one, and an
    object whose ``__call__`` is an ``async def``. A plain function that
    merely returns an awaitable (``lambda x: fetch(x)``) cannot be told from
    a sync one before it is called, so it is refused too: refusing it when
    the operator is built beats a ``TypeError`` from inside a running
    pipeline, the first time an item arrives.
    """
    if inspect.iscoroutinefunction(fn):
        return True
    return (
        callable(fn)
        and not inspect.isroutine(fn)
        and inspect.iscoroutinefunction(type(fn).__call__)
    )


class _ConcurrentMap(Operator[InT, OutT]):
    _kind = "concurrent_map"

    def __init__(
        self,
        fn: Callable[[InT], Awaitable[OutT]],
        max_concurrent: int,
        ordered: bool,
        *,
        name: str | None,
    ) -> None:
        if not _is_async(fn):
            raise TypeError(
                f"concurrent_map() needs an async function (async def), got {fn!r}: "
                "for a sync function use flowkit.map (fused, no task per item); "
                "a plain function or lambda that returns a coroutine is not recognised, "
                "write it as an async def"
            )
        check_count(max_concurrent, "max_concurrent")
        super().__init__(name=name)
        self._fn = fn
        self._max = max_concurrent
        self._ordered = ordered

    async def _run(
        self, receive: trio.abc.ReceiveChannel[InT], send: trio.abc.SendChannel[OutT]
    ) -> None:
        permits = trio.Semaphore(self._max)
        # Ordered: slots queue up in input order as calls start. Unordered:
        # each call queues its slot when it finishes. Either way the queue
        # never holds more than ``max_concurrent`` slots (one per permit).
        queue_send, queue_receive = trio.open_memory_channel[_Slot[OutT]](math.inf)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._feed, receive, queue_send, permits, nursery)
            try:
                await self._drain(queue_receive, send, permits)
            except trio.BrokenResourceError:
                if not _is_broken(send):
                    raise
                nursery.cancel_scope.cancel()  # downstream left: stop all calls

    async def _feed(
        self,
        receive: trio.abc.ReceiveChannel[InT],
        queue: trio.MemorySendChannel[_Slot[OutT]],
        permits: trio.Semaphore,
        nursery: trio.Nursery,
    ) -> None:
        counters = self._counters
        async with queue:
            while True:
                await permits.acquire()
                try:
                    # Take as many items as there are permits, no more.
                    items = await receive_some(receive, 1 + permits.value)
                except trio.EndOfChannel:
                    return
                for _ in items[1:]:
                    permits.acquire_nowait()  # only the drain releases: never blocks
                counters.items_in += len(items)
                counters.set_buffered(counters.items_in - counters.items_out)
                for item in items:
                    slot: _Slot[OutT] = _Slot()
                    if self._ordered:
                        queue.send_nowait(slot)
                        nursery.start_soon(self._call, item, slot, None)
                    else:
                        nursery.start_soon(self._call, item, slot, queue.clone())

    async def _call(
        self, item: InT, slot: _Slot[OutT], report: trio.MemorySendChannel[_Slot[OutT]] | None
    ) -> None:
        slot.value = await self._fn(item)
        slot.done.set()
        if report is not None:
            with report:
                report.send_nowait(slot)

    async def _drain(
        self,
        queue: trio.MemoryReceiveChannel[_Slot[OutT]],
        send: trio.abc.SendChannel[OutT],
        permits: trio.Semaphore,
    ) -> None:
        counters = self._counters
        head: _Slot[OutT] | None = None
        async with queue:
            while True:
                if head is None:
                    try:
                        head = await queue.receive()
                    except trio.EndOfChannel:
                        return
                await head.done.wait()
                values = [head.value]
                head = None
                # Everything else already finished goes out in the same send.
                while len(values) < CHUNK:
                    try:
                        slot = queue.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    if not slot.done.is_set():
                        head = slot
                        break
                    values.append(slot.value)
                await self._emit(send, values)
                counters.items_out += len(values)
                counters.emitted += len(values)
                counters.set_buffered(counters.items_in - counters.items_out)
                for _ in values:
                    permits.release()


def concurrent_map(
    fn: Callable[[InT], Awaitable[OutT]],
    *,
    max_concurrent: int,
    ordered: bool = True,
    name: str | None = None,
) -> Operator[InT, OutT]:
    """Run the async ``fn`` on up to ``max_concurrent`` items at once.

    Args:
        fn: an ``async def`` taking one item (or an object whose
            ``__call__`` is one, or a ``functools.partial`` of one).
        max_concurrent: the bound on calls in flight *plus* results waiting
            to be sent, in items. It is also the stage's ``buffered`` bound.
        ordered: ``True`` emits results in input order (a finished result
            waits for earlier ones, holding its permit, so a slow call
            stalls the reading once the window is full); ``False`` emits
            them as they finish.
        name: the stage's label in its statistics, repr and error messages
            (default: the operator's kind, ``"concurrent_map"``).

    When ``fn`` raises, the other calls are cancelled and the error
    propagates with its original type, never as an exception group (if
    several calls raise at once, the first is raised with a note naming the
    others). When downstream closes, the calls are
    cancelled and the stage returns normally. At the end of upstream every
    started call finishes and is delivered before the end.

    Statistics: ``buffered`` = calls in flight + results not yet sent.

    Raises:
        TypeError: ``fn`` is not an async function (a sync one belongs in
            :func:`~flowkit.map`), raised here rather than mid-stream.
        ValueError: ``max_concurrent`` is not an int >= 1.
    """
    return _ConcurrentMap(fn, max_concurrent, ordered, name=name)
