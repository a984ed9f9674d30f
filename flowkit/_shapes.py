"""Shapes: cut a stream short or thin it out, item by item.

* ``take``, ``take_while``, ``take_until`` *end* the stream early: the stage
  returns, which closes its receive end, so upstream sees
  ``BrokenResourceError`` and stops producing. They read no more than they
  need (inside a pipeline a ``take_while`` leaves the items after the one
  that stopped it in the hop), so they run as stages of their own.
* ``skip``, ``skip_while`` and ``distinct`` never end the stream; with
  synchronous functions they are fusible like ``map``: inside a pipeline
  they run chunk-wise in a neighbouring task, costing no hop.

What a stage rejects counts in ``filtered``: skipped items, duplicates, the
item that ended a ``take_while``.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import trio

from ._checks import check_count
from ._operator import CHUNK, Lookahead, Operator, receive_some
from ._transform import _failed, _Fusible

__all__ = ["distinct", "skip", "skip_while", "take", "take_until", "take_while"]

T = TypeVar("T")


def _check_length(value: object, what: str) -> int:
    """``value`` if it is an ``int`` >= 0 (``take(0)`` is a legitimate empty stream)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an int >= 0, got {value!r}")
    return value


class _Take(Operator[T, T]):
    _kind = "take"

    def __init__(self, count: int, *, name: str | None) -> None:
        super().__init__(name=name)
        self._count = _check_length(count, "count")

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        counters = self._counters
        remaining = self._count
        while remaining:
            try:
                chunk = await receive_some(receive, min(remaining, CHUNK))
            except trio.EndOfChannel:
                return
            counters.items_in += len(chunk)
            counters.set_buffered(len(chunk))
            await self._emit(send, chunk)
            counters.items_out += len(chunk)
            counters.emitted += len(chunk)
            counters.set_buffered(0)
            remaining -= len(chunk)


class _TakeWhile(Operator[T, T]):
    _kind = "take_while"

    def __init__(
        self, predicate: Callable[[T], object], inclusive: bool, *, name: str | None
    ) -> None:
        super().__init__(name=name)
        self._predicate = predicate
        self._inclusive = inclusive

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        counters = self._counters
        predicate = self._predicate
        upstream = Lookahead(receive, counters)
        while True:
            try:
                ready = await upstream.ready()
            except trio.EndOfChannel:
                return
            # Judge the ready items where they wait; take only those judged.
            kept = 0
            stopped = False
            error: Exception | None = None
            for item in itertools.islice(ready, CHUNK):
                try:
                    passed = predicate(item)
                except Exception as failure:
                    error = failure
                    break
                if not passed:
                    stopped = True
                    break
                kept += 1
            taken = upstream.take(kept + (error is not None or stopped))
            out = taken if stopped and self._inclusive else taken[:kept]
            counters.set_buffered(counters.items_in - counters.items_out)
            await self._emit(send, out)
            counters.items_out += len(out)
            counters.emitted += len(out)
            if error is not None:
                counters.set_buffered(1)  # the item it failed on, held by the crashed stage
                raise error
            if stopped:
                counters.filtered += len(taken) - len(out)
                counters.dropped += upstream.discard()
                counters.set_buffered(0)
                return
            counters.set_buffered(0)


class _TakeUntil(Operator[T, T]):
    _kind = "take_until"

    def __init__(self, event: trio.Event, *, name: str | None) -> None:
        super().__init__(name=name)
        self._event = event

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        counters = self._counters
        event = self._event
        reading: trio.CancelScope | None = None

        async def watch() -> None:
            await event.wait()
            if reading is not None:
                reading.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            while not event.is_set():
                # Only the wait for upstream is cut short by the event (a
                # cancelled receive took nothing); an item already taken is
                # delivered, however long downstream makes it wait.
                chunk: list[T] = []
                with trio.CancelScope() as reading:
                    try:
                        chunk = await receive_some(receive)
                    except trio.EndOfChannel:
                        break
                reading = None
                if not chunk:
                    break  # the event was set while waiting
                counters.items_in += len(chunk)
                counters.set_buffered(len(chunk))
                await self._emit(send, chunk)
                counters.items_out += len(chunk)
                counters.emitted += len(chunk)
                counters.set_buffered(0)
            nursery.cancel_scope.cancel()


class _Skip(_Fusible[T, T]):
    _kind = "skip"

    def __init__(self, count: int, *, name: str | None) -> None:
        super().__init__(name=name)
        self._remaining = _check_length(count, "count")

    def _apply(self, chunk: list[T]) -> list[T]:
        counters = self._counters
        out = chunk
        if self._remaining:
            cut = min(self._remaining, len(chunk))
            self._remaining -= cut
            out = chunk[cut:]
        counters.passed(len(chunk), len(out))
        return out


class _SkipWhile(_Fusible[T, T]):
    _kind = "skip_while"

    def __init__(self, predicate: Callable[[T], object], *, name: str | None) -> None:
        super().__init__(name=name)
        self._predicate = predicate
        self._skipping = True

    def _apply(self, chunk: list[T]) -> list[T]:
        counters = self._counters
        out = chunk
        if self._skipping:
            out = []
            rest = iter(chunk)
            try:
                for item in rest:
                    if not self._predicate(item):
                        self._skipping = False
                        out.append(item)
                        break
            except Exception as error:
                _failed(counters, chunk, rest, out, error)
            out.extend(rest)
        counters.passed(len(chunk), len(out))
        return out


class _Distinct(_Fusible[T, T]):
    _kind = "distinct"

    def __init__(
        self, key: Callable[[T], Hashable] | None, window: int, *, name: str | None
    ) -> None:
        super().__init__(name=name)
        self._key = key
        self._window = check_count(window, "window")
        # The most recently seen keys, oldest first: at most ``window``.
        self._seen: OrderedDict[Any, None] = OrderedDict()

    def _apply(self, chunk: list[T]) -> list[T]:
        counters = self._counters
        key = self._key
        seen = self._seen
        window = self._window
        out: list[T] = []
        rest = iter(chunk)
        try:
            for item in rest:
                k = item if key is None else key(item)
                if k in seen:
                    seen.move_to_end(k)  # seen again: remembered for longer
                    continue
                seen[k] = None
                if len(seen) > window:
                    seen.popitem(last=False)
                out.append(item)
        except Exception as error:
            _failed(counters, chunk, rest, out, error)
        counters.passed(len(chunk), len(out))
        return out


def take(count: int, *, name: str | None = None) -> Operator[Any, Any]:
    """Forward the first ``count`` items, then end the stream.

    The stage reads exactly ``count`` items (never one more), sends them,
    and returns: its receive end closes, so upstream sees
    ``BrokenResourceError`` and stops. An upstream that ends or fails first
    ends or fails the stage the same way. ``take(0)`` ends at once.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"take"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``count`` is not an int >= 0.
    """
    return _Take(count, name=name)


def take_while(
    predicate: Callable[[Any], object], *, inclusive: bool = False, name: str | None = None
) -> Operator[Any, Any]:
    """Forward items while ``predicate(item)`` is true; end at the first false one.

    The item that ended it is dropped (counted in ``filtered``) unless
    ``inclusive=True`` forwards it too. Inside a pipeline only the items
    judged are taken from the hop; on another channel up to a chunk may
    have been received already, and what was not judged counts in
    ``dropped``. An exception from ``predicate`` propagates with its
    original type, after the items before it.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"take_while"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _TakeWhile(predicate, inclusive, name=name)


def take_until(event: trio.Event, *, name: str | None = None) -> Operator[Any, Any]:
    """Forward items until ``event`` is set, then end the stream.

    Setting the event interrupts only the stage's wait for upstream (a
    cancelled receive takes nothing): every item already taken is delivered
    first. An event set before the stage starts ends it at once.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"take_until"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _TakeUntil(event, name=name)


def skip(count: int, *, name: str | None = None) -> Operator[Any, Any]:
    """Drop the first ``count`` items (counted in ``filtered``), forward the rest.

    Fusible: no task of its own inside a pipeline.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"skip"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``count`` is not an int >= 0.
    """
    return _Skip(count, name=name)


def skip_while(
    predicate: Callable[[Any], object], *, name: str | None = None
) -> Operator[Any, Any]:
    """Drop items while ``predicate(item)`` is true, then forward everything.

    Once an item fails the predicate, it and all later items pass and the
    predicate is never called again. Fusible.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"skip_while"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _SkipWhile(predicate, name=name)


def distinct(
    key: Callable[[Any], Hashable] | None = None, *, window: int, name: str | None = None
) -> Operator[Any, Any]:
    """Drop an item whose key is among the ``window`` most recently seen keys.

    The key is ``key(item)`` (default: the item itself; it must be
    hashable). Seeing a key, forwarded or not, makes it the most recent, so
    a key that keeps repeating stays suppressed; a key is forgotten once
    ``window`` other keys have been seen since. ``window=1`` drops only
    consecutive duplicates (Rx's ``distinctUntilChanged``). The stage holds
    at most ``window`` keys and no items. Duplicates count in ``filtered``.
    Fusible.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"distinct"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``window`` is not an int >= 1.
    """
    return _Distinct(key, window, name=name)
