"""Lossy buffers: ``drop_oldest``, ``drop_newest``, ``latest``, ``conflate``.

These never backpressure upstream. When downstream is slower than upstream
they decide what to give up instead: the oldest item, the incoming one, or
everything but the newest (optionally folded into one value). They are the
right tool when the producer must not be slowed down (a progress stream, a
sensor) and the consumer only needs the recent past.

All of them are built on the hand-off engine (:mod:`flowkit._handoff`): an
item being offered to a blocked downstream ``send`` is still held and can
still be evicted or replaced, so a consumer that went quiet gets the newest
items when it comes back, never a stale one that happened to be in flight.
That relies on cancel-atomic sends downstream (trio and flowkit memory
channels are) as well as cancel-atomic receives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any, TypeVar

from ._checks import check_count
from ._handoff import _Handoff
from ._operator import CHUNK, Operator

__all__ = ["conflate", "drop_newest", "drop_oldest", "latest"]

T = TypeVar("T")


class _Queue(_Handoff[T, T]):
    """A FIFO of at most ``max_items`` not yet accepted downstream."""

    def __init__(
        self, max_items: int, on_drop: Callable[[T], object] | None, *, name: str | None
    ) -> None:
        check_count(max_items, "max_items")
        super().__init__(name=name)
        self.max_items = max_items
        self._on_drop = on_drop
        self._pending: deque[T] = deque()

    def _room(self) -> int:
        # Never 0: upstream is never backpressured. Taking more than we can
        # hold would only drop items a fast downstream could have taken.
        return min(CHUNK, self.max_items)

    def _holding(self) -> bool:
        return bool(self._pending)

    def _drop(self, item: T) -> None:
        self._counters.dropped += 1
        if self._on_drop is not None:
            self._on_drop(item)

    def _values(self, chunked: bool) -> Sequence[T]:
        if chunked:
            return list(islice(self._pending, CHUNK))
        return (self._pending[0],)

    def _delivered(self, count: int) -> None:
        pending = self._pending
        for _ in range(count):
            pending.popleft()
        counters = self._counters
        counters.items_out += count
        counters.emitted += count
        counters.set_buffered(len(pending))


class _DropOldest(_Queue[T]):
    _kind = "drop_oldest"

    def _reclaim_for(self, chunk: list[T]) -> bool:
        # Offers always start at the head, so any eviction touches the offer.
        return len(self._pending) + len(chunk) > self.max_items

    def _admit(self, chunk: list[T]) -> None:
        pending = self._pending
        self._counters.items_in += len(chunk)
        pending.extend(chunk)
        while len(pending) > self.max_items:
            self._drop(pending.popleft())
        self._counters.set_buffered(len(pending))


class _DropNewest(_Queue[T]):
    _kind = "drop_newest"

    def _reclaim_for(self, chunk: list[T]) -> bool:
        return False  # what is already held (and offered) is never touched

    def _admit(self, chunk: list[T]) -> None:
        pending = self._pending
        self._counters.items_in += len(chunk)
        room = self.max_items - len(pending)
        pending.extend(chunk[:room])
        for item in chunk[room:]:
            self._drop(item)
        self._counters.set_buffered(len(pending))


class _Latest(_DropOldest[T]):
    _kind = "latest"

    def __init__(self, *, name: str | None) -> None:
        super().__init__(1, None, name=name)

    def _room(self) -> int:
        return CHUNK  # items that arrived together: only the last one matters


class _Conflate(_Handoff[T, T]):
    """One pending value folding ``count`` inputs."""

    _kind = "conflate"

    def __init__(self, merge: Callable[[T, T], T], *, name: str | None) -> None:
        super().__init__(name=name)
        self._merge = merge
        self._value: T | None = None
        self._count = 0

    def _room(self) -> int:
        return CHUNK

    def _holding(self) -> bool:
        return self._count > 0

    def _reclaim_for(self, chunk: list[T]) -> bool:
        return self._count > 0

    def _admit(self, chunk: list[T]) -> None:
        counters = self._counters
        counters.items_in += len(chunk)
        merge = self._merge
        items = iter(chunk)
        if self._count == 0:
            self._value = next(items)
            self._count = 1
        value = self._value
        for item in items:
            value = merge(value, item)  # type: ignore[arg-type]
            self._count += 1
        self._value = value
        counters.set_buffered(self._count)

    def _values(self, chunked: bool) -> Sequence[T]:
        return (self._value,)  # type: ignore[return-value]

    def _delivered(self, count: int) -> None:
        counters = self._counters
        counters.items_out += self._count
        counters.emitted += 1
        self._value = None
        self._count = 0
        counters.set_buffered(0)


def drop_oldest(
    max_items: int, *, on_drop: Callable[[T], object] | None = None, name: str | None = None
) -> Operator[Any, Any]:
    """Hold up to ``max_items`` items; when full, evict the oldest.

    Never blocks upstream: it keeps receiving while downstream is slow, so
    the producer runs at its own pace and the consumer gets the most recent
    ``max_items`` items when it comes back. The item being offered to a
    blocked downstream counts towards ``max_items`` and is evicted like any
    other, so nothing stale is delivered just because it was in flight.
    At the end of the stream everything still held is delivered, then the
    end. An upstream crash (``StreamAborted``) propagates.

    Args:
        max_items: the bound, in items (>= 1).
        on_drop: called with each evicted item, in order, as it is evicted
            (Reactor's ``onBufferOverflow``); an exception from it crashes
            the stage.
        name: the stage's label in its statistics, repr and error messages
            (default: the operator's kind, ``"drop_oldest"``).

    Statistics: ``dropped`` counts evictions; ``buffered``/``buffered_peak``
    never exceed ``max_items``.
    """
    return _DropOldest(max_items, on_drop, name=name)


def drop_newest(
    max_items: int, *, on_drop: Callable[[T], object] | None = None, name: str | None = None
) -> Operator[Any, Any]:
    """Hold up to ``max_items`` items; when full, reject the incoming one.

    Never blocks upstream. What it already holds is kept and delivered in
    order, so the consumer sees the *first* items of a burst; use
    :func:`drop_oldest` for the last ones. At the end everything held is
    delivered, then the end.

    Args:
        max_items: the bound, in items (>= 1).
        on_drop: called with each rejected item, in order.
        name: the stage's label in its statistics, repr and error messages
            (default: the operator's kind, ``"drop_newest"``).

    Statistics: ``dropped`` counts rejections; ``buffered`` never exceeds
    ``max_items``.
    """
    return _DropNewest(max_items, on_drop, name=name)


def latest(*, name: str | None = None) -> Operator[Any, Any]:
    """Keep only the newest item while downstream is busy.

    When downstream is waiting, an item goes straight through (no added
    latency). While it is busy, each new item replaces the held one (the
    replaced one counts as ``dropped``), and the consumer gets the newest
    when it asks again. Ideal for monotonic state such as progress. At the
    end the held item is delivered. Equivalent to ``drop_oldest(1)``.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"latest"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Latest(name=name)


def conflate(
    merge: Callable[[T, T], T] | None = None, *, name: str | None = None
) -> Operator[Any, Any]:
    """While downstream is busy, fold the items that arrive into one value.

    ``merge(acc, new) -> acc`` (Akka's ``conflate``) combines the held value with each new item;
    the first item of a run is the initial ``acc`` as is. When downstream is
    waiting a value goes straight through. Nothing is dropped: a value that
    merged ``k`` inputs adds ``k`` to ``items_out`` and 1 to ``emitted``, and
    ``buffered`` is the number of inputs the held value represents. With
    ``merge=None`` it is :func:`latest`.

    An exception from ``merge`` crashes the stage with that exception.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"conflate"``, or ``"latest"`` without ``merge``; see "Naming a
    stage" in ``docs/operators.md``).
    """
    if merge is None:
        return _Latest(name=name)
    return _Conflate(merge, name=name)
