"""Folds: ``scan`` (running value per item), ``fold`` and ``reduce`` (one value at the end).

A fold keeps one accumulator, whatever the stream's length: the stage holds
a single value, not the items, so its memory is bounded by that value. The
statistics still count the items folded into it as ``buffered`` until the
value goes out, so conservation (``items_in == items_out + dropped +
filtered + buffered``) says exactly which items the emitted value carries.

``scan`` with a synchronous function is fusible like ``map``: inside a
pipeline it runs chunk-wise in a neighbouring task, with no hop of its own.
``fold`` and ``reduce`` must act at the end of the stream, which a fused
stage never sees, so they run as stages of their own.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import trio

from ._operator import Operator, _is_broken, receive_some
from ._transform import _failed, _Fusible

__all__ = ["fold", "reduce", "scan"]

T = TypeVar("T")
AccT = TypeVar("AccT")

#: A step function: ``(accumulator, item) -> accumulator``, sync or async.
Step = Callable[[Any, Any], Any]


class _SyncScan(_Fusible[T, AccT]):
    _kind = "scan"

    def __init__(self, fn: Callable[[AccT, T], AccT], initial: AccT, *, name: str | None) -> None:
        super().__init__(name=name)
        self._fn = fn
        self._acc = initial

    def _apply(self, chunk: list[T]) -> list[AccT]:
        counters = self._counters
        fn = self._fn
        acc = self._acc
        out: list[AccT] = []
        rest = iter(chunk)
        try:
            for item in rest:
                acc = fn(acc, item)
                out.append(acc)
        except Exception as error:
            self._acc = acc
            _failed(counters, chunk, rest, out, error)
        self._acc = acc
        counters.passed(len(chunk), len(out))  # one out per item
        return out


class _AsyncScan(Operator[T, AccT], Generic[T, AccT]):
    _kind = "scan"

    def __init__(
        self, fn: Callable[[AccT, T], Awaitable[AccT]], initial: AccT, *, name: str | None
    ) -> None:
        super().__init__(name=name)
        self._fn = fn
        self._acc = initial

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[AccT]
    ) -> None:
        counters = self._counters
        async for item in receive:
            counters.items_in += 1
            counters.set_buffered(1)
            self._acc = await self._fn(self._acc, item)
            await self._emit(send, (self._acc,))
            counters.set_buffered(0)
            counters.items_out += 1
            counters.emitted += 1


_NOTHING: Any = object()


class _Fold(Operator[Any, Any]):
    """Fold every item into one accumulator; emit it once upstream ends.

    With ``initial`` missing (``reduce``) the first item is the accumulator
    and an empty stream emits nothing.
    """

    _kind = "fold"

    def __init__(self, fn: Step, initial: Any, *, name: str | None) -> None:
        super().__init__(name=name)
        self._fn = fn
        self._async = inspect.iscoroutinefunction(fn)
        self._initial = initial

    async def _run(
        self, receive: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[Any]
    ) -> None:
        counters = self._counters
        fn = self._fn
        acc = self._initial
        while True:
            try:
                chunk = await receive_some(receive)
            except trio.EndOfChannel:
                break
            counters.items_in += len(chunk)
            counters.set_buffered(counters.items_in)
            for item in chunk:
                if acc is _NOTHING:
                    acc = item
                elif self._async:
                    acc = await fn(acc, item)
                else:
                    acc = fn(acc, item)
            if _is_broken(send):
                # Nobody will ever see the value: stop reading, so upstream
                # learns that downstream left now rather than at its end.
                return
        if acc is _NOTHING:
            return
        await self._emit(send, (acc,))
        counters.items_out = counters.items_in
        counters.emitted += 1
        counters.set_buffered(0)


def scan(
    fn: Callable[[AccT, T], AccT] | Callable[[AccT, T], Awaitable[AccT]],
    initial: AccT,
    *,
    name: str | None = None,
) -> Operator[T, AccT]:
    """Emit the running accumulation: ``acc = fn(acc, item)`` after each item.

    One output per input (``scan(operator.add, 0)`` over 1, 2, 3 emits 1, 3,
    6). Unlike Akka's ``scan``, the ``initial`` value itself is not emitted,
    so ``items_in == items_out`` and an empty stream emits nothing. A plain
    ``fn`` is fusible like :func:`~flowkit.map`; an ``async def`` runs one
    item at a time. An exception from ``fn`` propagates with its original
    type, after the values of the items before it.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"scan"``; see "Naming a stage" in ``docs/operators.md``).
    """
    if inspect.iscoroutinefunction(fn):
        return _AsyncScan(fn, initial, name=name)
    return _SyncScan(fn, initial, name=name)  # type: ignore[arg-type]


def fold(
    fn: Callable[[AccT, T], AccT] | Callable[[AccT, T], Awaitable[AccT]],
    initial: AccT,
    *,
    name: str | None = None,
) -> Operator[T, AccT]:
    """Fold the whole stream into one value, emitted when upstream ends.

    Akka's ``fold``: ``acc = fn(acc, item)`` for every item, starting from
    ``initial``; an empty stream emits ``initial``. ``fn`` may be a plain
    function or an ``async def``. The stage holds one value, not the items;
    ``buffered`` counts the items folded into it until it is sent.

    * error: an exception from ``fn`` (or upstream's ``StreamAborted``)
      propagates with its original type; the partial value is not emitted.
    * closed downstream: noticed after each chunk, so the stage stops
      reading at once, and upstream sees ``BrokenResourceError``.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"fold"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Fold(fn, initial, name=name)


class _Reduce(_Fold):
    _kind = "reduce"


def reduce(
    fn: Callable[[T, T], T] | Callable[[T, T], Awaitable[T]], *, name: str | None = None
) -> Operator[T, T]:
    """Like :func:`fold` with the first item as the initial value.

    Akka's ``reduce``, except that an empty stream ends with nothing emitted
    rather than failing: a stream of no readings has no maximum, and no
    error either.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"reduce"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Reduce(fn, _NOTHING, name=name)
