"""``join``: pair the items of two keyed streams that arrive close together in time.

An interval join in processing time (Flink's interval join, on trio's
clock): an upstream item and an item of the other input are paired when
their keys are equal and they arrived at most ``within`` seconds apart.
Each side remembers what arrived in the last ``within`` seconds, at most
``max_items`` items per side; an item is released once it is too old to
pair with anything new. Released items that took part in a pair count as
``items_out``; those that never met a partner count as ``filtered`` (they
did not satisfy the join), so conservation holds and nothing leaves
uncounted.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import trio

from ._checks import check_count
from ._combine import Input, _Reader
from ._operator import Operator, _is_broken
from ._timing import _positive

__all__ = ["join"]

#: How far past an item's last pairing moment a full side sleeps: the window
#: is inclusive, so at exactly ``at + within`` the item may still pair.
_PAST = 1e-9


class _Entry:
    __slots__ = ("at", "item", "key", "matched")

    def __init__(self, at: float, key: Hashable, item: Any) -> None:
        self.at = at
        self.key = key
        self.item = item
        self.matched = False


class _Side:
    """What one input has delivered in the last ``within`` seconds."""

    __slots__ = ("by_key", "entries", "key")

    def __init__(self, key: Callable[[Any], Hashable]) -> None:
        self.key = key
        self.entries: deque[_Entry] = deque()  # oldest first
        self.by_key: dict[Hashable, deque[_Entry]] = {}


class _Join(Operator[Any, tuple[Any, Any]]):
    _kind = "join"

    def __init__(
        self,
        other: Input,
        key: Callable[[Any], Hashable],
        other_key: Callable[[Any], Hashable] | None,
        within: float,
        max_items: int,
        *,
        name: str | None,
    ) -> None:
        super().__init__(name=name)
        self._other = other
        self._key = key
        self._other_key = other_key or key
        self._within = _positive("within", within)
        self._max = check_count(max_items, "max_items")

    async def _run(
        self, receive: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[tuple[Any, Any]]
    ) -> None:
        other = _Reader(self._other)
        left, right = _Side(self._key), _Side(self._other_key)
        try:
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope
                nursery.start_soon(self._read, _Reader(receive), left, right, True, send, scope)
                nursery.start_soon(self._read, other, right, left, False, send, scope)
        finally:
            with trio.CancelScope(shield=True):
                await other.close()
        self._release(left, right, before=math.inf)  # both ended: nothing more can pair

    async def _read(
        self,
        reader: _Reader,
        mine: _Side,
        theirs: _Side,
        is_left: bool,
        send: trio.abc.SendChannel[tuple[Any, Any]],
        scope: trio.CancelScope,
    ) -> None:
        counters = self._counters
        within = self._within
        try:
            while True:
                self._release(mine, theirs, before=trio.current_time() - within)
                if len(mine.entries) >= self._max:
                    # Full: read no more from this input until its oldest
                    # item is too old to pair (upstream waits meanwhile).
                    await trio.sleep_until(mine.entries[0].at + within + _PAST)
                    continue
                try:
                    chunk = await reader.chunk(self._max - len(mine.entries))
                except trio.EndOfChannel:
                    return
                now = trio.current_time()
                self._release(mine, theirs, before=now - within)  # too old to pair now
                counters.items_in += len(chunk)
                pairs: list[tuple[Any, Any]] = []
                for item in chunk:
                    entry = _Entry(now, mine.key(item), item)
                    for partner in theirs.by_key.get(entry.key, ()):
                        entry.matched = partner.matched = True
                        pairs.append((item, partner.item) if is_left else (partner.item, item))
                    mine.entries.append(entry)
                    mine.by_key.setdefault(entry.key, deque()).append(entry)
                counters.set_buffered(len(mine.entries) + len(theirs.entries))
                if pairs:
                    await self._emit(send, pairs)
                    counters.emitted += len(pairs)
        except trio.BrokenResourceError:
            if not _is_broken(send):
                raise
            scope.cancel()  # downstream left: stop reading both inputs

    def _release(self, *sides: _Side, before: float) -> None:
        """Forget the items that arrived before ``before``: none can pair any more."""
        counters = self._counters
        for side in sides:
            entries = side.entries
            while entries and entries[0].at < before:
                entry = entries.popleft()
                same = side.by_key[entry.key]
                same.popleft()  # the oldest of its key, as it is the oldest overall
                if not same:
                    del side.by_key[entry.key]
                if entry.matched:
                    counters.items_out += 1
                else:
                    counters.filtered += 1
        counters.set_buffered(sum(len(side.entries) for side in sides))


def join(
    other: Input,
    *,
    key: Callable[[Any], Hashable],
    within: float,
    other_key: Callable[[Any], Hashable] | None = None,
    max_items: int = 10_000,
    name: str | None = None,
) -> Operator[Any, tuple[Any, Any]]:
    """Pair upstream items with ``other``'s items of the same key, at most ``within`` s apart.

    An inner interval join in processing time: ``(upstream item, other
    item)`` is emitted for every two items with ``key(a) == other_key(b)``
    (``other_key`` defaults to ``key``) whose arrival times differ by at most
    ``within`` seconds, as soon as the second of them arrives. One item may
    pair with several. ``other`` is a receive channel or an async iterable,
    owned and closed by the stage.

    Each side holds what arrived in the last ``within`` seconds, at most
    ``max_items`` items; a full side stops reading its input until its
    oldest item is too old to pair, so that input is backpressured. The
    stream ends when both inputs have ended.

    Statistics: ``items_in`` counts both inputs; ``emitted`` the pairs;
    released items count in ``items_out`` if they were paired and in
    ``filtered`` if they never were; ``buffered`` is what both sides hold.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"join"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``within`` is not a finite number > 0, or
            ``max_items`` is not an int >= 1.
    """
    return _Join(other, key, other_key, within, max_items, name=name)
