"""``group_by``: per-key sub-pipelines, merged back (Akka's groupBy + mergeSubstreams).

Theory of operation. One dispatcher (the stage's own task) reads upstream
and hands each item to its key's **substream**: a flowkit channel of
``per_key_items`` items feeding that key's sub-pipeline, which runs in a
task of its own (``open_pipeline(substream, *make(key))``) and sends what it
produces straight downstream, so the sub-pipelines' outputs merge in
whatever order they are ready.

Keys are live from their first item until their sub-pipeline has ended.
A key idle for ``idle_timeout`` seconds (no item handed to it) is expired:
its substream is closed, so its sub-pipeline flushes what it holds (a
partial window, a running total) and ends; a later item with that key
starts a fresh one, once the old one has ended, so a key's outputs keep
their order. Idle keys are kept in order of last activity, so the
next expiry is found in O(1) however many keys are live.

At ``max_keys`` live keys a new key waits (``at_cap="wait"``: upstream is
backpressured until a key expires and its sub-pipeline ends), fails the
stage (``"fail"``), or evicts the idlest key (``"evict"``: its substream is
closed at once, as if it had expired).

How far one slow key holds up the others: the dispatcher hands items over
in arrival order, so when a key's sub-pipeline is slower than its share of
the stream, its substream fills (``per_key_items``) and the dispatcher waits
for room there. Meanwhile no item reaches any key. So a slow key delays
the others by at most the time its sub-pipeline takes to accept one more
item once ``per_key_items`` of its items are queued; keys whose items do
not arrive while it is full are unaffected.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal, TypeVar

import attrs
import trio

from ._channel import FlowReceiveChannel, FlowSendChannel, open_channel
from ._checks import check_count
from ._operator import Operator, _is_broken, receive_until
from ._pipeline import Stage, open_pipeline
from ._windows import _seconds

__all__ = ["GroupStatistics", "group_by"]

T = TypeVar("T")

AtCap = Literal["wait", "fail", "evict"]


@attrs.frozen
class GroupStatistics:
    """A snapshot of a ``group_by`` stage's keys.

    Attributes:
        live: keys whose sub-pipeline is running now (closing ones included).
        live_peak: the most live keys ever (never above ``max_keys``).
        opened: sub-pipelines started.
        expired: substreams closed for being idle ``idle_timeout``.
        evicted: substreams closed to make room (``at_cap="evict"``).
        waited_seconds: time a new key spent waiting at the cap.
    """

    live: int
    live_peak: int
    opened: int
    expired: int
    evicted: int
    waited_seconds: float


class _Sub:
    __slots__ = ("done", "last", "send")

    def __init__(self, send: FlowSendChannel[Any], now: float) -> None:
        self.send = send
        self.done = trio.Event()  # set when its sub-pipeline has ended
        self.last = now


class _GroupBy(Operator[T, Any]):
    _kind = "group_by"
    #: Substreams run pipelines of their own, which its statistics do not
    #: see into: an acked pipeline refuses it (see ``_acks``).
    _acks_opaque = True

    def __init__(
        self,
        key: Callable[[T], Hashable],
        make: Callable[[Hashable], Sequence[Stage]],
        max_keys: int,
        idle_timeout: float,
        at_cap: AtCap,
        per_key_items: int,
        *,
        name: str | None,
    ) -> None:
        if at_cap not in ("wait", "fail", "evict"):
            raise ValueError(f"at_cap must be 'wait', 'fail' or 'evict', got {at_cap!r}")
        super().__init__(name=name)
        self._key = key
        self._make = make
        self._max_keys = check_count(max_keys, "max_keys")
        self._idle = _seconds("idle_timeout", idle_timeout)
        self._at_cap = at_cap
        self._per_key = check_count(per_key_items, "per_key_items")
        self._subs: OrderedDict[Hashable, _Sub] = OrderedDict()  # by last activity
        self._live = 0
        self._ended = trio.Event()
        # Keys whose substream is closed but whose sub-pipeline still runs
        # (flushing): a new one for the key waits, or it could overtake.
        self._closing: dict[Hashable, trio.Event] = {}
        self._keys = {"peak": 0, "opened": 0, "expired": 0, "evicted": 0}
        self._waited = 0.0

    def group_statistics(self) -> GroupStatistics:
        """A frozen snapshot of the live keys and what happened to them."""
        keys = self._keys
        return GroupStatistics(
            self._live,
            keys["peak"],
            keys["opened"],
            keys["expired"],
            keys["evicted"],
            self._waited,
        )

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[Any]
    ) -> None:
        counters = self._counters
        async with trio.open_nursery() as nursery:
            try:
                while True:
                    try:
                        # At most per_key_items at a time: what the
                        # dispatcher holds is bounded like a substream.
                        chunk = await receive_until(receive, self._next_expiry(), self._per_key)
                    except trio.EndOfChannel:
                        break
                    if chunk is None:
                        self._expire(trio.current_time())
                        continue
                    counters.items_in += len(chunk)
                    counters.set_buffered(counters.buffered + len(chunk))
                    by_key: dict[Hashable, list[T]] = {}
                    for item in chunk:
                        by_key.setdefault(self._key(item), []).append(item)
                    for k, items in by_key.items():
                        await self._hand_over(nursery, send, k, items)
                    self._expire(trio.current_time())
            finally:
                for sub in self._subs.values():
                    sub.send.close()  # each sub-pipeline flushes and ends
                self._subs.clear()

    def _next_expiry(self) -> float:
        if not self._subs:
            return math.inf
        return next(iter(self._subs.values())).last + self._idle

    def _expire(self, now: float) -> None:
        subs = self._subs
        while subs:
            k, sub = next(iter(subs.items()))
            if sub.last + self._idle > now:
                return
            self._close(k)
            self._keys["expired"] += 1

    async def _hand_over(
        self, nursery: trio.Nursery, send: trio.abc.SendChannel[Any], k: Hashable, items: list[T]
    ) -> None:
        counters = self._counters
        sub = self._subs.get(k)
        if sub is None:
            sub = await self._open(nursery, send, k)
        sent = 0
        try:
            while sent < len(items):
                sent += await sub.send.send_some(items[sent:] if sent else items)
        except trio.BrokenResourceError:
            if _is_broken(send):
                raise  # downstream left: the stage returns normally
            # This key's sub-pipeline stopped taking items (it ended early):
            # what it refused is counted, never lost silently; a later item
            # with this key starts a fresh sub-pipeline.
            counters.dropped += len(items) - sent
            self._close(k)
        else:
            sub.last = trio.current_time()
            self._subs.move_to_end(k)
        finally:
            counters.items_out += sent
            counters.set_buffered(counters.items_in - counters.items_out - counters.dropped)

    async def _open(
        self, nursery: trio.Nursery, send: trio.abc.SendChannel[Any], k: Hashable
    ) -> _Sub:
        """Start key ``k``'s sub-pipeline, first making room at the cap.

        If ``k``'s previous sub-pipeline is still flushing, wait for it to
        end first: the key's outputs stay in order.
        """
        previous = self._closing.get(k)
        if previous is not None:
            started = trio.current_time()
            await previous.wait()
            self._waited += trio.current_time() - started
        if self._live >= self._max_keys:
            if self._at_cap == "fail":
                raise RuntimeError(
                    f"{self.name}: {self._max_keys} live keys (max_keys) and a new key "
                    f"{k!r} arrived; pass at_cap='wait' or 'evict' to make room instead"
                )
            started = trio.current_time()
            try:
                await self._make_room()
            finally:
                self._waited += trio.current_time() - started
        stages = list(self._make(k))
        sub_send: FlowSendChannel[Any]
        sub_receive: FlowReceiveChannel[Any]
        sub_send, sub_receive = open_channel(self._per_key)
        self._live += 1
        self._keys["opened"] += 1
        self._keys["peak"] = max(self._keys["peak"], self._live)
        sub = self._subs[k] = _Sub(sub_send, trio.current_time())
        nursery.start_soon(self._substream, nursery, k, sub, sub_receive, stages, send)
        return sub

    def _close(self, k: Hashable) -> None:
        """Close ``k``'s substream: its sub-pipeline flushes and ends."""
        sub = self._subs.pop(k)
        sub.send.close()
        if not sub.done.is_set():
            self._closing[k] = sub.done

    async def _make_room(self) -> None:
        while self._live >= self._max_keys:
            closing = self._live - len(self._subs)  # substreams already closed
            if self._at_cap == "evict" and self._subs and not closing:
                self._close(next(iter(self._subs)))
                self._keys["evicted"] += 1
                continue
            ended = self._ended
            with trio.move_on_at(self._next_expiry()):
                await ended.wait()
            self._expire(trio.current_time())

    async def _substream(
        self,
        nursery: trio.Nursery,
        k: Hashable,
        sub: _Sub,
        receive: FlowReceiveChannel[Any],
        stages: list[Stage],
        send: trio.abc.SendChannel[Any],
    ) -> None:
        counters = self._counters
        try:
            async with receive, open_pipeline(receive, *stages) as out:
                while True:
                    try:
                        chunk = await out.receive_some()
                    except trio.EndOfChannel:
                        return
                    try:
                        await self._emit(send, chunk)
                    except trio.BrokenResourceError:
                        # Downstream left: the whole stage winds down.
                        nursery.cancel_scope.cancel()
                        return
                    counters.emitted += len(chunk)
        finally:
            # Items queued for a sub-pipeline that ended without taking
            # them (it stopped early) were handed over but never used.
            stats = receive.statistics()
            lost = stats.items_sent - stats.items_received
            counters.items_out -= lost
            counters.dropped += lost
            self._live -= 1
            self._ended.set()
            self._ended = trio.Event()
            sub.done.set()
            if self._closing.get(k) is sub.done:
                del self._closing[k]


def group_by(
    key: Callable[[Any], Hashable],
    make: Callable[[Hashable], Sequence[Stage]],
    *,
    max_keys: int = 1000,
    idle_timeout: float = 60.0,
    at_cap: AtCap = "wait",
    per_key_items: int = 16,
    name: str | None = None,
) -> Operator[Any, Any]:
    """Run each key's items through a sub-pipeline of their own; merge the outputs.

    ``make(key)`` returns fresh stages for a new key (an operator object is
    one stage, so it must build new ones each call); ``()`` passes the
    key's items through. Within a key the order is kept; across keys the
    outputs interleave as the sub-pipelines produce them.

    Args:
        key: an item's key.
        make: the stages of a key's sub-pipeline.
        max_keys: live keys at most (a key is live until its sub-pipeline
            has ended).
        idle_timeout: seconds without an item after which a key's
            substream is closed (its sub-pipeline flushes and ends).
        at_cap: what a new key does at ``max_keys``: ``"wait"`` (default:
            upstream waits until a key expires), ``"fail"`` (``RuntimeError``)
            or ``"evict"`` (the idlest key's substream is closed now).
        per_key_items: items queued for one key's sub-pipeline at most.
        name: the stage's label (default ``"group_by"``).

    Bounds: the dispatcher holds at most ``per_key_items`` items
    (``buffered``), each substream at most ``per_key_items``, and each
    sub-pipeline what its own stages bound.

    Statistics: ``items_out`` counts items handed to sub-pipelines,
    ``emitted`` the values they sent downstream, ``dropped`` items a
    sub-pipeline that had ended early refused; ``group_statistics()`` the
    keys (live, peak, expired, evicted, time waited at the cap).
    """
    return _GroupBy(key, make, max_keys, idle_timeout, at_cap, per_key_items, name=name)
