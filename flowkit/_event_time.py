"""Event-time tumbling windows: timestamps, watermarks, allowed lateness.

Flink's model, for one stage. Each item carries its own time (``timestamp``,
any float scale). The stage's **watermark** is the largest timestamp seen
minus ``out_of_orderness``: the claim "no item older than this is still
coming". A window ``[j*size, (j+1)*size)`` **fires** (is emitted, revision
0) once the watermark reaches its end. It is then kept for
``allowed_lateness`` more units of event time: an item arriving for it
meanwhile joins it and the window is emitted again, whole, with the next
revision number (Flink's accumulating mode), so a consumer replaces the
earlier result. When the watermark passes ``end + allowed_lateness`` the
window is purged, and an item for it after that is **late**: it goes to
``on_late`` and is counted in ``dropped``, never merged or lost silently.

No clock is read: the watermark moves only with the items, so an idle
stream fires nothing until its next item or its end. At the end the
watermark jumps to infinity: every open window fires, complete.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import trio

from ._checks import check_count
from ._operator import CHUNK, Operator, receive_some
from ._windows import DEFAULT_MAX_ITEMS, Window, _seconds

__all__ = ["event_time_window"]

T = TypeVar("T")

_UNFIRED = -1


class _EventTimeWindows(Operator[T, Window[T]]):
    _kind = "event_time_window"

    def __init__(
        self,
        size: float,
        timestamp: Callable[[T], float],
        key: Callable[[T], Hashable] | None,
        out_of_orderness: float,
        allowed_lateness: float,
        on_late: Callable[[T], object] | None,
        max_items: int,
        *,
        name: str | None,
    ) -> None:
        super().__init__(name=name)
        self._size = size
        self._timestamp = timestamp
        self._key = key
        self._delay = out_of_orderness
        self._lateness = allowed_lateness
        self._on_late = on_late
        self._max_items = check_count(max_items, "max_items")
        self.watermark = -math.inf
        # window index -> key -> [items, revision last emitted (-1: not yet)]
        self._windows: dict[int, dict[Hashable, list[Any]]] = {}
        self._unfired: list[int] = []  # heap of indexes with a window not fired
        self._fired: list[int] = []  # heap of indexes waiting to be purged
        self._held = 0

    def _end(self, j: int) -> float:
        return (j + 1) * self._size

    def _window(self, j: int, k: Hashable, state: list[Any], partial: bool = False) -> Window[T]:
        state[1] += 1
        return Window(j * self._size, self._end(j), list(state[0]), k, partial, state[1])

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[Window[T]]
    ) -> None:
        while True:
            try:
                chunk = await receive_some(receive, CHUNK)
            except trio.EndOfChannel:
                self.watermark = math.inf
                await self._send(send, self._advance(), 0)
                return
            # No checkpoint until the chunk is placed and counted: every
            # observation of the statistics sees it whole or not at all.
            out: list[Window[T]] = []
            for item in chunk:
                out += self._place(item)
            await self._send(send, out, len(chunk))

    def _late(self, item: T, j: int) -> bool:
        """Whether ``item`` (of window ``j``) is beyond the allowed lateness."""
        if self._end(j) + self._lateness > self.watermark:
            return False
        self._counters.dropped += 1
        if self._on_late is not None:
            self._on_late(item)
        return True

    def _place(self, item: T) -> list[Window[T]]:
        """Put one item in its window; the windows to emit because of it."""
        ts = float(self._timestamp(item))
        j = math.floor(ts / self._size)
        if self._late(item, j):
            return []
        out: list[Window[T]] = []
        if self._held >= self._max_items:
            out += self._evict()
            if self._late(item, j):
                return out
        k = None if self._key is None else self._key(item)
        keys = self._windows.get(j)
        if keys is None:
            keys = self._windows[j] = {}
            heapq.heappush(self._unfired, j)
        state = keys.get(k)
        if state is None:
            state = keys[k] = [[], _UNFIRED]
        state[0].append(item)
        self._held += 1
        if self._end(j) <= self.watermark:
            # Late but within the lateness: the window (re-)fires at once.
            out.append(self._window(j, k, state))
        if ts - self._delay > self.watermark:
            self.watermark = ts - self._delay
            out += self._advance()
        return out

    def _advance(self) -> list[Window[T]]:
        """Fire the windows the watermark has passed; purge the expired ones."""
        out: list[Window[T]] = []
        watermark = self.watermark
        unfired, fired = self._unfired, self._fired
        while unfired and self._end(unfired[0]) <= watermark:
            j = heapq.heappop(unfired)
            keys = self._windows.get(j)
            if keys is None:
                continue  # evicted at the cap
            for k, state in keys.items():
                if state[1] == _UNFIRED:
                    out.append(self._window(j, k, state))
            heapq.heappush(fired, j)
        while fired and self._end(fired[0]) + self._lateness <= watermark:
            self._purge(heapq.heappop(fired))
        return out

    def _purge(self, j: int) -> None:
        keys = self._windows.pop(j, None)
        if keys is not None:
            self._held -= sum(len(state[0]) for state in keys.values())

    def _evict(self) -> list[Window[T]]:
        """At the cap: emit the oldest window's unfired parts early, then purge it.

        Raising the watermark to its end plus the lateness makes every later
        item for it late, so it goes to ``on_late`` instead of reopening it.
        """
        j = min(self._windows)
        out = [
            self._window(j, k, state, partial=True)
            for k, state in self._windows[j].items()
            if state[1] == _UNFIRED
        ]
        self._purge(j)
        self.watermark = max(self.watermark, self._end(j) + self._lateness)
        return out + self._advance()

    async def _send(
        self, send: trio.abc.SendChannel[Window[T]], windows: list[Window[T]], received: int
    ) -> None:
        """Count ``received`` placed items, then emit ``windows``.

        An item leaves ``buffered`` when its window is purged (it may be
        re-emitted until then), or when the cap evicts its window.
        """
        counters = self._counters
        counters.items_in += received
        counters.items_out = counters.items_in - counters.dropped - self._held
        counters.set_buffered(self._held)
        if windows:
            await self._emit(send, windows)
            counters.emitted += len(windows)
            for window in windows:
                counters.batch_sizes[len(window.items)] += 1


def event_time_window(
    size: float,
    *,
    timestamp: Callable[[Any], float],
    out_of_orderness: float = 0.0,
    allowed_lateness: float = 0.0,
    on_late: Callable[[Any], object] | None = None,
    key: Callable[[Any], Hashable] | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
    name: str | None = None,
) -> Operator[Any, Window[Any]]:
    """Tumbling windows of ``size`` in the items' own time (Flink's semantics).

    Args:
        size: window length, in the units of ``timestamp``.
        timestamp: an item's event time (a float; windows are
            ``[j*size, (j+1)*size)``).
        out_of_orderness: how far behind the largest timestamp seen an item
            may still arrive and be on time: the watermark is that largest
            timestamp minus this.
        allowed_lateness: how long after the watermark passed its end a
            window is kept; an item for it meanwhile re-emits it whole, with
            ``revision`` one higher.
        on_late: called with each item later than that (also counted in
            ``dropped``); ``None``: counted only. A bounded channel's
            ``send_nowait`` makes it a side output.
        key: with a function, windows per key (the watermark is the stage's).
        max_items: items held in kept windows at most; at the cap the oldest
            window is emitted early (``partial=True``) and closed, so later
            items for it are late.
        name: the stage's label (default ``"event_time_window"``).

    At the end every open window fires (the watermark becomes infinite); an
    upstream crash propagates and fires nothing.
    """
    size = _seconds("size", size)
    for what, value in (
        ("out_of_orderness", out_of_orderness),
        ("allowed_lateness", allowed_lateness),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value < math.inf
        ):
            raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return _EventTimeWindows(
        size,
        timestamp,
        key,
        float(out_of_orderness),
        float(allowed_lateness),
        on_late,
        max_items,
        name=name,
    )
