"""``map`` and ``filter``: per-item functions, sync or async.

A map or filter with a *synchronous* function is fusible: the pipeline runs
a run of adjacent fusible stages inside one task (or inside the task next
to it), applying each to a whole chunk with the C-level ``map``/``filter``
builtins. Crossing a task boundary costs microseconds per hop while a fused
function call costs tens of nanoseconds, so fusion is the main reason a
flowkit pipeline moves millions of items per second.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, overload

import trio

from ._operator import Operator, receive_some

__all__ = ["filter", "map"]

InT = TypeVar("InT")
OutT = TypeVar("OutT")


class _Fusible(Operator[InT, OutT]):
    """An operator whose work on a chunk is a pure synchronous function."""

    def _apply(self, chunk: list[InT]) -> list[OutT]:
        raise NotImplementedError

    async def _run(
        self, receive: trio.abc.ReceiveChannel[InT], send: trio.abc.SendChannel[OutT]
    ) -> None:
        while True:
            try:
                chunk = await receive_some(receive)
            except trio.EndOfChannel:
                return
            await self._emit(send, self._apply(chunk))


class _SyncMap(_Fusible[InT, OutT]):
    _kind = "map"

    def __init__(self, fn: Callable[[InT], OutT], *, name: str | None) -> None:
        super().__init__(name=name)
        self._fn = fn

    def _apply(self, chunk: list[InT]) -> list[OutT]:
        counters = self._counters
        counters.items_in += len(chunk)
        out = list(builtins.map(self._fn, chunk))
        counters.items_out += len(out)
        counters.emitted += len(out)
        return out


class _SyncFilter(_Fusible[InT, InT]):
    _kind = "filter"

    def __init__(self, predicate: Callable[[InT], object], *, name: str | None) -> None:
        super().__init__(name=name)
        self._predicate = predicate

    def _apply(self, chunk: list[InT]) -> list[InT]:
        counters = self._counters
        counters.items_in += len(chunk)
        out = list(builtins.filter(self._predicate, chunk))
        counters.items_out += len(out)
        counters.emitted += len(out)
        counters.filtered += len(chunk) - len(out)
        return out


class _AsyncMap(Operator[InT, OutT], Generic[InT, OutT]):
    _kind = "map"

    def __init__(self, fn: Callable[[InT], Awaitable[OutT]], *, name: str | None) -> None:
        super().__init__(name=name)
        self._fn = fn

    async def _run(
        self, receive: trio.abc.ReceiveChannel[InT], send: trio.abc.SendChannel[OutT]
    ) -> None:
        counters = self._counters
        fn = self._fn
        async for item in receive:
            counters.items_in += 1
            counters.set_buffered(1)
            value = await fn(item)
            await self._emit(send, (value,))
            counters.set_buffered(0)
            counters.items_out += 1
            counters.emitted += 1


class _AsyncFilter(Operator[InT, InT]):
    _kind = "filter"

    def __init__(self, predicate: Callable[[InT], Awaitable[object]], *, name: str | None) -> None:
        super().__init__(name=name)
        self._predicate = predicate

    async def _run(
        self, receive: trio.abc.ReceiveChannel[InT], send: trio.abc.SendChannel[InT]
    ) -> None:
        counters = self._counters
        predicate = self._predicate
        async for item in receive:
            counters.items_in += 1
            counters.set_buffered(1)
            if await predicate(item):
                await self._emit(send, (item,))
                counters.items_out += 1
                counters.emitted += 1
            else:
                counters.filtered += 1
            counters.set_buffered(0)


@overload
def map(
    fn: Callable[[InT], Awaitable[OutT]], *, name: str | None = None
) -> Operator[InT, OutT]: ...
@overload
def map(fn: Callable[[InT], OutT], *, name: str | None = None) -> Operator[InT, OutT]: ...
def map(fn: Callable[[InT], Any], *, name: str | None = None) -> Operator[InT, Any]:
    """Apply ``fn`` to every item, in order.

    ``fn`` may be a plain function (fusible: runs chunk-wise, no task of
    its own inside a pipeline) or an ``async def`` (one item at a time; use
    :func:`concurrent_map` to run several at once). An exception from
    ``fn`` crashes the stage and propagates with its original type.
    """
    if inspect.iscoroutinefunction(fn):
        return _AsyncMap(fn, name=name)
    return _SyncMap(fn, name=name)


@overload
def filter(
    predicate: Callable[[InT], Awaitable[object]], *, name: str | None = None
) -> Operator[InT, InT]: ...
@overload
def filter(
    predicate: Callable[[InT], object], *, name: str | None = None
) -> Operator[InT, InT]: ...
def filter(predicate: Callable[[InT], Any], *, name: str | None = None) -> Operator[InT, InT]:
    """Forward only the items for which ``predicate`` is true.

    Rejected items are counted in ``statistics().filtered``. Sync predicates
    are fusible like :func:`map`.
    """
    if inspect.iscoroutinefunction(predicate):
        return _AsyncFilter(predicate, name=name)
    return _SyncFilter(predicate, name=name)
