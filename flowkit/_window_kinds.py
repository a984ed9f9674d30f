"""The window kinds: where an arriving item goes and when windows close.

One small class per kind (an *assigner*): :class:`_Grid` for tumbling and
sliding windows, :class:`_Sessions`, :class:`_Counts`. They hold the open
windows and know nothing of channels or waiting; the operator in
:mod:`flowkit._windows` asks them for the next deadline, closes what is
due, places what arrived, and keeps the bound and the statistics. Also
:class:`Window`, the value every window operator emits.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import attrs

__all__ = ["Window"]

T = TypeVar("T")

_UNKEYED: Any = None  # the key of every item when no ``key=`` is given


@attrs.frozen
class Window(Generic[T]):
    """One emitted window.

    Attributes:
        start: when the window opened, on trio's clock (seconds). For a
            tumbling or sliding window its grid start; for a session or count
            window the arrival of its first item.
        end: when it closed: the grid end, the session's last arrival plus
            the gap, or a count window's last arrival. A window flushed at
            the end of the stream keeps the end it would have had.
        items: the window's items in arrival order (empty only for the empty
            windows ``emit_empty=True`` asks for).
        key: the items' key with ``key=``, else ``None``.
        partial: ``True`` when the window did not close by its own rule: the
            stream ended while it was open, or the stage was at its cap
            (keyed count windows, event-time windows).
        revision: 0 for a window's first emission; an event-time window
            that late items (within the allowed lateness) joined is emitted
            again, whole, with the next revision, replacing the earlier one.
    """

    start: float
    end: float
    items: list[T]
    key: Any = None
    partial: bool = False
    revision: int = 0


class _Assigner(Generic[T]):
    """Where arriving items go and when windows close, for one window kind."""

    held = 0  # items in open windows, each counted once

    def begin(self, now: float) -> None:
        """The stage started at ``now`` (time windows align to it)."""

    def deadline(self) -> float:
        """When the earliest open window closes (``inf``: no timed close)."""
        return math.inf

    def close_due(self, now: float) -> list[Window[T]]:
        """Remove and return the windows whose end is at or before ``now``."""
        return []

    def add(self, now: float, chunk: Sequence[T]) -> list[Window[T]]:
        """Place ``chunk``, received at ``now``; return windows that it completed."""
        raise NotImplementedError

    def flush(self) -> list[Window[T]]:
        """Remove and return every open window holding items, as partial."""
        raise NotImplementedError

    def evict(self) -> list[Window[T]]:
        """At the cap with no timed close coming: give up the oldest window."""
        raise NotImplementedError


class _Grid(_Assigner[T]):
    """Windows on a fixed grid: ``[t0 + j*every, t0 + j*every + size)``.

    ``t0`` is the stage's start, so the grid is the same for every key and
    all keys' windows close at the same instants: one tick closes window
    ``j`` for every key at once. Sliding windows overlapping ``t0`` exist
    too (they start before it), so every item is in the same number of
    windows. Tumbling windows are the case ``every == size``, where each
    window's items are exactly what is held, kept without timestamps.
    """

    def __init__(
        self, size: float, every: float, key: Callable[[T], Hashable] | None, emit_empty: bool
    ) -> None:
        self._size = size
        self._every = every
        self._key = key
        self._emit_empty = emit_empty
        self._tumbling = every == size
        self._t0 = 0.0
        self._next = 0  # the next window index to close
        # key -> held items (tumbling: the items; sliding: (arrival, item))
        self._open: dict[Hashable, Any] = {}

    def begin(self, now: float) -> None:
        self._t0 = now
        # The first window is the earliest one still open at t0.
        self._next = math.floor(-self._size / self._every) + 1
        if self._emit_empty:
            self._open[_UNKEYED] = [] if self._tumbling else deque()

    def _end(self, j: int) -> float:
        return self._t0 + j * self._every + self._size

    def deadline(self) -> float:
        if not self._open:
            return math.inf
        return self._end(self._next)

    def close_due(self, now: float) -> list[Window[T]]:
        out: list[Window[T]] = []
        while self._open and self._end(self._next) <= now:
            if self._emit_empty and not self.held:
                # Every due window is empty (nothing arrives while windows
                # are being closed): report them as one empty span, so a
                # consumer slower than the window rate is never buried
                # under a backlog of empty windows, nor the stage behind.
                last = self._last_closed_by(now)
                out.append(self._empty_span(self._next, last, out))
                self._next = last + 1
                break
            windows = self._close(self._next)
            if windows and not windows[0].items:
                windows = [self._empty_span(self._next, self._next, out)]
            out += windows
            self._next += 1
        return out

    def _last_closed_by(self, now: float) -> int:
        """The last window index whose end is at or before ``now`` (>= ``_next``).

        Computed by division, then corrected, because float rounding can put
        the quotient one window off the comparison ``_end(j) <= now`` that
        every other step uses; a disagreement would stall the grid.
        """
        last = max(self._next, math.floor((now - self._t0 - self._size) / self._every))
        while self._end(last + 1) <= now:
            last += 1
        while last > self._next and self._end(last) > now:
            last -= 1
        return last

    def _empty_span(self, first: int, last: int, out: list[Window[T]]) -> Window[T]:
        """An empty window from window ``first``'s start to ``last``'s end.

        Merged with an empty span just before it in ``out`` (popped).
        """
        start = self._t0 + first * self._every
        if out and not out[-1].items:
            start = out.pop().start
        return Window(start, self._end(last), [])

    def _close(self, j: int) -> list[Window[T]]:
        start, end = self._t0 + j * self._every, self._end(j)
        out: list[Window[T]] = []
        if self._tumbling:
            for k, items in self._open.items():
                if items or self._emit_empty:
                    out.append(Window(start, end, items, k))
            self.held = 0
            self._open = {_UNKEYED: []} if self._emit_empty else {}
            return out
        # Every held item arrived before this window's end (windows close
        # before later items are placed) and at or after its start (older
        # ones left at the previous tick): the window is all that is held.
        next_start = start + self._every
        for k in list(self._open):
            held: deque[tuple[float, T]] = self._open[k]
            if held or self._emit_empty:
                out.append(Window(start, end, [item for _, item in held], k))
            while held and held[0][0] < next_start:
                held.popleft()
                self.held -= 1
            if not held and not self._emit_empty:
                del self._open[k]
        return out

    def add(self, now: float, chunk: Sequence[T]) -> list[Window[T]]:
        key = self._key
        open_ = self._open
        if not open_ and self._end(self._next) <= now:
            # Nothing was held, so no window was closing: the next one to
            # close is the earliest still open now.
            self._next = self._last_closed_by(now) + 1
        if self._tumbling:
            if key is None:
                held = open_.get(_UNKEYED)
                if held is None:
                    held = open_[_UNKEYED] = []
                held.extend(chunk)
            else:
                for item in chunk:
                    k = key(item)
                    held = open_.get(k)
                    if held is None:
                        open_[k] = [item]
                    else:
                        held.append(item)
        else:
            for item in chunk:
                k = _UNKEYED if key is None else key(item)
                held = open_.get(k)
                if held is None:
                    held = open_[k] = deque()
                held.append((now, item))
        self.held += len(chunk)
        return []

    def flush(self) -> list[Window[T]]:
        # The still-open window with the held items: the next one to close
        # (for sliding windows it holds everything still held).
        j = self._next
        start, end = self._t0 + j * self._every, self._end(j)
        out = [
            Window(start, end, list(items) if self._tumbling else [x for _, x in items], k, True)
            for k, items in self._open.items()
            if items
        ]
        self._open.clear()
        self.held = 0
        return out


class _Sessions(_Assigner[T]):
    """A key's session closes ``gap`` seconds after its last item.

    Open sessions are kept in the order of their last activity (an item
    moves its session to the back), so the front is always the next to
    close: finding the deadline is O(1) however many keys are open.
    """

    def __init__(self, gap: float, key: Callable[[T], Hashable] | None) -> None:
        self._gap = gap
        self._key = key
        # key -> [first arrival, last arrival, items]
        self._open: OrderedDict[Hashable, list[Any]] = OrderedDict()

    def deadline(self) -> float:
        if not self._open:
            return math.inf
        return float(next(iter(self._open.values()))[1]) + self._gap

    def close_due(self, now: float) -> list[Window[T]]:
        out: list[Window[T]] = []
        open_ = self._open
        gap = self._gap
        while open_:
            k, (first, last, items) = next(iter(open_.items()))
            if last + gap > now:
                break
            del open_[k]
            self.held -= len(items)
            out.append(Window(first, last + gap, items, k))
        return out

    def add(self, now: float, chunk: Sequence[T]) -> list[Window[T]]:
        key = self._key
        open_ = self._open
        for item in chunk:
            k = _UNKEYED if key is None else key(item)
            session = open_.get(k)
            if session is None:
                open_[k] = [now, now, [item]]
            else:
                session[1] = now
                session[2].append(item)
                open_.move_to_end(k)
        self.held += len(chunk)
        return []

    def flush(self) -> list[Window[T]]:
        out = [
            Window(f, last + self._gap, items, k, True)
            for k, (f, last, items) in self._open.items()
        ]
        self._open.clear()
        self.held = 0
        return out


class _Counts(_Assigner[T]):
    """A key's window closes with its ``size``-th item."""

    def __init__(self, size: int, key: Callable[[T], Hashable] | None) -> None:
        self._size = size
        self._key = key
        # key -> [first arrival, last arrival, items], oldest window first
        self._open: OrderedDict[Hashable, list[Any]] = OrderedDict()

    def add(self, now: float, chunk: Sequence[T]) -> list[Window[T]]:
        key = self._key
        open_ = self._open
        size = self._size
        out: list[Window[T]] = []
        for item in chunk:
            k = _UNKEYED if key is None else key(item)
            window = open_.get(k)
            if window is None:
                window = open_[k] = [now, now, []]
            window[1] = now
            window[2].append(item)
            if len(window[2]) == size:
                del open_[k]
                out.append(Window(window[0], now, window[2], k))
        self.held += len(chunk) - size * len(out)
        return out

    def _take(self, k: Hashable) -> Window[T]:
        first, last, items = self._open.pop(k)
        self.held -= len(items)
        return Window(first, last, items, k, True)

    def flush(self) -> list[Window[T]]:
        return [self._take(k) for k in list(self._open)]

    def evict(self) -> list[Window[T]]:
        return [self._take(next(iter(self._open)))]
