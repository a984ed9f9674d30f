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
import operator
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, overload

import trio

from ._operator import Operator, receive_some

__all__ = ["filter", "map"]

InT = TypeVar("InT")
OutT = TypeVar("OutT")


class _ChunkFailed(Exception):
    """A fusible stage's function raised part-way through a chunk.

    ``done`` holds the outputs of the items that preceded the failing one, so
    whoever runs the chunk delivers them before raising ``error`` (the
    user's exception, unchanged): a failure travels behind every item that
    preceded it, fused or not. Never escapes the pipeline runner.
    """

    def __init__(self, done: list[Any], error: Exception) -> None:
        super().__init__(done, error)
        self.done = done
        self.error = error


class _Fusible(Operator[InT, OutT]):
    """An operator whose work on a chunk is a pure synchronous function.

    ``_apply`` raises :class:`_ChunkFailed` (never the bare error) when the
    function fails, carrying the outputs made before the failure.
    """

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
            out, error = _run_chunk(self._apply, chunk)
            await self._emit(send, out)
            if error is not None:
                raise error


def _run_chunk(
    apply: Callable[[list[Any]], list[Any]], chunk: list[Any]
) -> tuple[list[Any], Exception | None]:
    """``apply(chunk)``, and the error that cut it short, if one did.

    The outputs are those of the items before the failure; the caller
    delivers them first, then raises the error.
    """
    try:
        return apply(chunk), None
    except _ChunkFailed as failed:
        return failed.done, failed.error


def _failed(counters: Any, chunk: list[Any], rest: Any, out: list[Any], error: Exception) -> None:
    """Count a chunk a function failed on, then raise :class:`_ChunkFailed`.

    The items before the failing one are counted as processed; the failing
    one stays ``buffered`` (held by the crashed stage), as in an async map.
    """
    consumed = len(chunk) - operator.length_hint(rest)
    counters.items_in += consumed
    counters.items_out += len(out)
    counters.emitted += len(out)
    counters.filtered += consumed - 1 - len(out)
    counters.set_buffered(1)
    raise _ChunkFailed(out, error) from None


class _SyncMap(_Fusible[InT, OutT]):
    _kind = "map"

    def __init__(self, fn: Callable[[InT], OutT], *, name: str | None) -> None:
        super().__init__(name=name)
        self._fn = fn

    def _apply(self, chunk: list[InT]) -> list[OutT]:
        counters = self._counters
        out: list[OutT] = []
        rest = iter(chunk)
        try:
            # list.extend keeps what it appended when the function raises.
            out.extend(builtins.map(self._fn, rest))
        except Exception as error:
            _failed(counters, chunk, rest, out, error)
        counters.passed(len(chunk), len(out))  # one out per item
        return out


class _SyncFilter(_Fusible[InT, InT]):
    _kind = "filter"

    def __init__(self, predicate: Callable[[InT], object], *, name: str | None) -> None:
        super().__init__(name=name)
        self._predicate = predicate

    def _apply(self, chunk: list[InT]) -> list[InT]:
        counters = self._counters
        out: list[InT] = []
        rest = iter(chunk)
        try:
            out.extend(builtins.filter(self._predicate, rest))
        except Exception as error:
            _failed(counters, chunk, rest, out, error)
        counters.passed(len(chunk), len(out))
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

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"map"``; see "Naming a stage" in ``docs/operators.md``).
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

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"filter"``; see "Naming a stage" in ``docs/operators.md``).
    """
    if inspect.iscoroutinefunction(predicate):
        return _AsyncFilter(predicate, name=name)
    return _SyncFilter(predicate, name=name)
