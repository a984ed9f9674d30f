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
and closing rules are an *assigner* (one small class per window kind, in
:mod:`flowkit._window_kinds`); the operator does the waiting, the bounds
and the statistics.

Bounds. Open windows hold at most ``max_items`` items in all (an item in
several sliding windows counts once). At the cap the stage stops receiving,
so upstream is backpressured until time closes a window and frees room;
the items that waited are placed by the time they were received, in later
windows. Count windows do not close with time, so a keyed count window at
the cap emits its oldest open window early, marked ``partial``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import trio

from ._checks import check_count
from ._operator import CHUNK, Operator, receive_until
from ._window_kinds import Window, _Assigner, _Counts, _Grid, _Sessions

__all__ = ["Window", "count_window", "session_window", "sliding_window", "tumbling_window"]

T = TypeVar("T")

#: ``max_items`` of a time window or a keyed count window unless given.
DEFAULT_MAX_ITEMS = 10_000


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
