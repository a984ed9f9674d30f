"""Processing-time and count windows: tumbling, sliding, session, count.

A window groups the items that arrived during a span of time (or a number
of items) and is emitted, once, when it closes, as a :class:`Window`
carrying its bounds. Time is the stage's own arrival time on trio's clock:
an item belongs to the windows open at the moment the stage received it.

Theory of operation. The stage loops over one timed receive, cut off at the
moment the earliest open window closes (``move_on_at``; receives are
cancel-atomic, so the cut loses nothing). When that moment has passed, the
due windows go out first and only then are the items just received placed,
so a window never holds an item that arrived after its end. The placement
and closing rules are an *assigner* (one small class per window kind); the
operator does the waiting, the bounds and the statistics.

Bounds. Open windows hold at most ``max_items`` items in all (an item in
several sliding windows counts once). At the cap the stage stops receiving,
so upstream is backpressured until time closes a window and frees room;
the items that waited are placed by the time they were received, in later
windows. Count windows do not close with time, so a keyed count window at
the cap emits its oldest open window early, marked ``partial``.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import attrs
import trio

from ._checks import check_count
from ._operator import CHUNK, Operator, receive_until

__all__ = ["Window", "count_window", "session_window", "sliding_window", "tumbling_window"]

T = TypeVar("T")

#: ``max_items`` of a time window or a keyed count window unless given.
DEFAULT_MAX_ITEMS = 10_000

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


class _Windows(Operator[T, Window[T]]):
    _kind = "window"

    def __init__(self, assigner: _Assigner[T], max_items: int, *, name: str | None) -> None:
        super().__init__(name=name)
        self._assigner = assigner
        self._max_items = check_count(max_items, "max_items")

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[Window[T]]
    ) -> None:
        assigner = self._assigner
        counters = self._counters
        assigner.begin(trio.current_time())
        while True:
            deadline = assigner.deadline()
            room = self._max_items - assigner.held
            chunk: list[T] = []
            if room <= 0:
                if deadline == math.inf:
                    await self._send(send, assigner.evict())
                    continue
                await trio.sleep_until(deadline)  # backpressure until a window closes
            else:
                try:
                    if deadline <= trio.current_time():
                        # Windows are already due (the last send took that
                        # long): take only what is ready, so that a stage
                        # behind its windows still sees items and the end.
                        chunk = _ready(receive, min(room, CHUNK))
                    else:
                        chunk = await receive_until(receive, deadline, min(room, CHUNK)) or []
                except trio.EndOfChannel:
                    await self._send(send, assigner.flush())
                    return
                counters.items_in += len(chunk)
                counters.set_buffered(assigner.held + len(chunk))
            now = trio.current_time()
            if now >= deadline:
                # Due windows first: the chunk arrived after they closed.
                await self._send(send, assigner.close_due(now), pending=len(chunk))
            if chunk:
                await self._send(send, assigner.add(now, chunk))

    async def _send(
        self, send: trio.abc.SendChannel[Window[T]], windows: list[Window[T]], pending: int = 0
    ) -> None:
        """Emit closed windows; their items leave ``buffered`` once sent.

        ``pending`` counts received items not placed yet (they wait behind
        the windows that closed before they arrived).
        """
        counters = self._counters
        if windows:
            await self._emit(send, windows)
            counters.emitted += len(windows)
            for window in windows:
                counters.batch_sizes[len(window.items)] += 1
        held = self._assigner.held + pending
        counters.items_out = counters.items_in - held
        counters.set_buffered(held)


def _ready(receive: trio.abc.ReceiveChannel[T], max_items: int) -> list[T]:
    """The items ready in ``receive`` now, up to ``max_items``, never waiting.

    Raises :class:`trio.EndOfChannel` at the end when nothing was taken. A
    channel without ``receive_nowait`` yields nothing: its items wait until
    the stage has caught up with its windows.
    """
    receive_nowait = getattr(receive, "receive_nowait", None)
    chunk: list[T] = []
    if receive_nowait is None:
        return chunk
    while len(chunk) < max_items:
        try:
            chunk.append(receive_nowait())
        except trio.WouldBlock:
            break
        except trio.EndOfChannel:
            if chunk:
                break
            raise
    return chunk


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def _no_empty_with_key(key: object, emit_empty: bool) -> None:
    if key is not None and emit_empty:
        raise ValueError(
            "emit_empty=True needs an unkeyed window: a keyed stage cannot know "
            "which keys an empty window should be reported for"
        )


def tumbling_window(
    size: float,
    *,
    key: Callable[[Any], Hashable] | None = None,
    emit_empty: bool = False,
    max_items: int = DEFAULT_MAX_ITEMS,
    name: str | None = None,
) -> Operator[Any, Window[Any]]:
    """Group items into back-to-back windows of ``size`` seconds.

    Windows are ``[t0 + j*size, t0 + (j+1)*size)`` with ``t0`` the moment
    the stage started; an item belongs to the window open when the stage
    received it. Each window is emitted, as a :class:`Window`, at its end.

    Args:
        size: the window length in seconds.
        key: with a function, one window per key per interval (all keys
            share the grid); ``Window.key`` says whose.
        emit_empty: also emit windows that received nothing (unkeyed only),
            so a consumer sees every interval, for example as a zero rate.
        max_items: items held in open windows at most; at the cap upstream
            waits until the window closes.
        name: the stage's label in its statistics, repr and error messages
            (default ``"tumbling_window"``).

    At the end the open windows holding items are flushed (``partial=True``)
    and then the end; an upstream crash propagates and flushes nothing.
    """
    _no_empty_with_key(key, emit_empty)
    seconds = _seconds("size", size)
    return _Windows(
        _Grid(seconds, seconds, key, emit_empty), max_items, name=name or "tumbling_window"
    )


def sliding_window(
    size: float,
    every: float,
    *,
    key: Callable[[Any], Hashable] | None = None,
    emit_empty: bool = False,
    max_items: int = DEFAULT_MAX_ITEMS,
    name: str | None = None,
) -> Operator[Any, Window[Any]]:
    """Overlapping (hopping) windows of ``size`` seconds, one every ``every``.

    Windows are ``[t0 + j*every, t0 + j*every + size)`` for every integer
    ``j`` whose window is open at or after ``t0`` (the stage's start), so
    each item lands in about ``size / every`` windows (the first windows
    started before ``t0``). Items are held once, whatever the overlap.
    ``every`` may not exceed ``size``: items in the gaps between windows
    would belong to none.

    Args, end and errors as for :func:`tumbling_window`; ``every`` is the
    step between window starts (``0 < every <= size``). ``name=`` labels
    the stage (default ``"sliding_window"``).
    """
    _no_empty_with_key(key, emit_empty)
    length, step = _seconds("size", size), _seconds("every", every)
    if step > length:
        raise ValueError(
            f"every ({step:g} s) must not exceed size ({length:g} s): items arriving "
            "between two windows would belong to none"
        )
    return _Windows(_Grid(length, step, key, emit_empty), max_items, name=name or "sliding_window")


def session_window(
    gap: float,
    *,
    key: Callable[[Any], Hashable] | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
    name: str | None = None,
) -> Operator[Any, Window[Any]]:
    """Group bursts: a window closes ``gap`` seconds after its last item.

    A session opens with an item that finds none open (for its key) and
    stays open while items keep arriving less than ``gap`` apart. It is
    emitted ``gap`` seconds after its last item, with ``start`` the first
    arrival and ``end`` the last arrival plus ``gap``.

    Args:
        gap: seconds of quiet that close a session.
        key: with a function, sessions per key.
        max_items: items held in open sessions at most; at the cap upstream
            waits (which lets the gap pass and the oldest session close).
        name: the stage's label (default ``"session_window"``).

    At the end the open sessions are flushed (``partial=True``).
    """
    return _Windows(_Sessions(_seconds("gap", gap), key), max_items, name=name or "session_window")


def count_window(
    size: int,
    *,
    key: Callable[[Any], Hashable] | None = None,
    max_items: int | None = None,
    name: str | None = None,
) -> Operator[Any, Window[Any]]:
    """Windows of ``size`` items each (per key with ``key=``).

    A window closes with its ``size``-th item; ``start`` and ``end`` are the
    arrival times of its first and last item. Without a key the stage holds
    fewer than ``size`` items. With one, open windows of all keys hold at
    most ``max_items`` (default 10,000); at the cap the oldest open window
    is emitted early with ``partial=True`` (nothing closes by time here, so
    waiting could wait forever). At the end open windows are flushed,
    partial. ``name=`` labels the stage (default ``"count_window"``).
    """
    check_count(size, "size")
    if max_items is None:
        max_items = size if key is None else max(size, DEFAULT_MAX_ITEMS)
    if check_count(max_items, "max_items") < size:
        raise ValueError(f"max_items ({max_items}) must be at least size ({size})")
    return _Windows(_Counts(size, key), max_items, name=name or "count_window")
