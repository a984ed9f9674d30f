"""A Redis Streams consumer group as a pipeline source, acknowledged only once done.

:func:`open_group_source` reads a stream through a consumer group
(``XREADGROUP``) in bounded batches, only when the pipeline pulls: the
pipeline's pump asks for the next entry, and a batch is read only once the
last one was handed over. Each :class:`Entry` carries its entry id.

**At least once.** The source's :class:`flowkit.AckTracker` (``source.acks``,
which ``open_pipeline`` binds by itself) settles entries only at a point
where the pipeline holds none of them, so an entry is acknowledged
(``XACK``, one round trip per settle point, not per entry) only after the
sink committed everything made from it, or a stage dropped or filtered it.
A crash, a failure or leaving the pipeline early acknowledges nothing it
still held: those entries stay pending and are delivered again.

**Recovery.** Every ``claim_interval`` the source looks at the group's
pending entries idle for ``claim_idle``: one delivered ``max_deliveries``
times goes to the dead-letter stream (with why) and is acknowledged, in one
``MULTI``; the others are claimed (``XAUTOCLAIM``) and go through this
pipeline. While this pipeline holds an entry longer than half of
``claim_idle`` (a long window, a blocked sink), a task of the source claims
it again for itself
(``XCLAIM ... JUSTID``, which resets its idle time without counting a
delivery), so a live consumer's entries are never taken from it however
long its operators hold them. Consumer names are unique per process
(``host-pid-random``); consumers idle for ``stale_after`` with nothing
pending are deleted.

**Faults.** Every command goes through :class:`RedisClient`; when Redis is
unreachable the source waits for it to come back (the client probes with
exponential backoff and full jitter) and retries. Nothing is acknowledged
that was not settled, and a retried ``XACK`` is harmless.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import coredis.exceptions
import trio

import flowkit
from flowkit._tasks import ungrouped

from ._client import RedisClient, StoreUnavailable
from ._entries import Entry, GroupStatistics, _text, consumer_name

__all__ = ["Entry", "GroupSource", "GroupStatistics", "live_sources", "open_group_source"]

_T = TypeVar("_T")


class GroupSource:
    """The source: iterate it in ``open_pipeline``; made by :func:`open_group_source`."""

    def __init__(
        self,
        client: RedisClient,
        stream: str,
        group: str,
        *,
        consumer: str | None,
        count: int,
        block: float,
        max_unacked: int,
        claim_idle: float,
        claim_interval: float | None,
        max_deliveries: int,
        dead_letter: str | None,
        stale_after: float,
        until_idle: float | None,
        start: str,
    ) -> None:
        if not 0 < block < client.timeout:
            raise ValueError(f"block must be > 0 and below the client's timeout ({client.timeout})")
        if not claim_idle > 0 or max_deliveries < 1 or count < 1:
            raise ValueError("claim_idle must be > 0, max_deliveries and count >= 1")
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer or consumer_name()
        self.acks: flowkit.AckTracker[str] = flowkit.AckTracker(max_unsettled=max_unacked)
        self.dead_letter = dead_letter or f"{stream}:dead"
        self._count = count
        self._block_ms = max(1, round(block * 1000))
        self._claim_idle_ms = max(1, round(claim_idle * 1000))
        self._claim_interval = claim_interval if claim_interval is not None else claim_idle / 2
        self._max_deliveries = max_deliveries
        self._stale_ms = round(stale_after * 1000)
        self._until_idle = until_idle
        self._start = start
        self._ready: deque[Entry] = deque()
        #: When each entry read or claimed and not yet acknowledged (queued here
        #: or handed over) was last read or claimed.
        self._held_since: dict[str, float] = {}
        self._next_maintenance = 0.0
        self._claim_cursor = "0-0"
        #: Where the walk of this consumer's own pending entries stands (None: not walking).
        self._own_cursor: str | None = None
        self._acking: list[str] = []
        self._stats: dict[str, int] = dict.fromkeys(
            ("read", "claimed", "acked", "dead_lettered", "round_trips", "retries", "deleted"), 0
        )
        self._lag = -1
        self._group_pending = -1
        _LIVE.add(self)  # for /metrics (weakly: see live_sources)

    def __repr__(self) -> str:
        return f"<GroupSource {self.stream!r} group={self.group!r} consumer={self.consumer!r}>"

    def statistics(self) -> GroupStatistics:
        s = self._stats
        return GroupStatistics(
            consumer=self.consumer,
            read=s["read"],
            claimed=s["claimed"],
            acked=s["acked"],
            pending=len(self._held_since),
            dead_lettered=s["dead_lettered"],
            lag=self._lag,
            group_pending=self._group_pending,
            round_trips=s["round_trips"],
            retries=s["retries"],
            consumers_deleted=s["deleted"],
        )

    async def __aiter__(self) -> AsyncIterator[Entry]:
        idle_since = trio.current_time()
        while True:
            if not self._ready:
                await self.acks.wait_for_room()
                if trio.current_time() >= self._next_maintenance:
                    await self._maintain()
                if not self._ready:
                    await self._read()
                if not self._ready:
                    if (
                        self._until_idle is not None
                        and not self._held_since
                        and self._own_cursor is None
                        and trio.current_time() - idle_since >= self._until_idle
                    ):
                        return
                    continue
                idle_since = trio.current_time()
            entry = self._ready.popleft()
            self.acks.emitted(entry.id)  # no checkpoint between this and the hand-over
            yield entry

    async def _call(self, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        """One round trip; while Redis is unreachable, wait for it and retry."""
        while True:
            self._stats["round_trips"] += 1
            try:
                return await self.client.run(operation)
            except StoreUnavailable:
                self._stats["retries"] += 1
                await self.client.wait_up()
            except coredis.exceptions.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                await self.create_group()  # Redis came back without the group

    async def create_group(self) -> None:
        """Create the group (and the stream) unless it exists; wait for Redis if it is down."""
        while True:
            try:
                await self.client.run(
                    lambda redis: redis.xgroup_create(
                        self.stream, self.group, self._start, mkstream=True
                    )
                )
            except StoreUnavailable:
                await self.client.wait_up()
                continue
            except coredis.exceptions.StreamDuplicateConsumerGroupError:
                pass
            except coredis.exceptions.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            return

    async def _read(self) -> None:
        """Read new entries or, after a failed read, this consumer's own pending ones.

        A read whose reply was lost (Redis killed or unreachable mid-way) may
        still have delivered its entries: they are pending for this
        consumer, which never saw them. So after a retried read the next
        reads walk this consumer's pending entries (``XREADGROUP ... 0``)
        and hand over those it does not hold, before reading new ones.
        """
        own = self._own_cursor
        streams = {self.stream: own if own is not None else ">"}
        retries = self._stats["retries"]
        reply = await self._call(
            lambda redis: redis.xreadgroup(
                self.group,
                self.consumer,
                streams,
                count=self._count,
                block=None if own is not None else self._block_ms,
            )
        )
        entries = [entry for batch in (reply or {}).values() for entry in batch]
        if own is not None:
            self._own_cursor = _text(entries[-1].identifier) if entries else None
            entries = [
                entry
                for entry in entries
                if entry.field_values and _text(entry.identifier) not in self._held_since
            ]
        elif self._stats["retries"] > retries:
            self._own_cursor = "0-0"
        for entry in entries:
            self._take(Entry(_text(entry.identifier), entry.field_values))
            self._stats["read"] += 1

    def _take(self, entry: Entry) -> None:
        """Queue an entry now ours; from now on it is kept ours (see :meth:`_keep_held`)."""
        self._ready.append(entry)
        self._held_since[entry.id] = trio.current_time()

    async def _maintain(self) -> None:
        """Dead-letter, claim, clean up, refresh the lag (between reads)."""
        self._next_maintenance = trio.current_time() + self._claim_interval
        await self._dead_letter()
        await self._claim()
        await self._clean_up()

    async def _keep_held_forever(self) -> None:
        """Every ``claim_interval``, even while the pipeline is blocked: see :meth:`_keep_held`."""
        while True:
            await trio.sleep(self._claim_interval)
            await self._keep_held()

    async def _dead_letter(self) -> None:
        pending = await self._call(
            lambda redis: redis.xpending(
                self.stream, self.group, "-", "+", self._count, idle=self._claim_idle_ms
            )
        )
        spent = [p for p in pending if p.delivered >= self._max_deliveries]
        if not spent:
            return
        ids = [_text(p.identifier) for p in spent]
        entries = await self._call(
            lambda redis: redis.xclaim(
                self.stream, self.group, self.consumer, self._claim_idle_ms, ids
            )
        )
        if not entries:
            return  # another consumer got there first
        deliveries = {_text(p.identifier): p.delivered for p in spent}

        async def move(redis: Any) -> None:
            async with redis.pipeline(transaction=True) as pipe:
                for entry in entries:
                    entry_id = _text(entry.identifier)
                    fields = dict(entry.field_values)
                    fields[b"flowkit-source-id"] = entry_id
                    fields[b"flowkit-error"] = (
                        f"not acknowledged after {deliveries.get(entry_id, 0)} deliveries "
                        "(each consumer holding it died or its pipeline failed first)"
                    )
                    pipe.xadd(self.dead_letter, fields)
                pipe.xack(self.stream, self.group, [_text(e.identifier) for e in entries])

        await self._call(move)
        self._stats["dead_lettered"] += len(entries)

    async def _claim(self) -> None:
        retries = self._stats["retries"]
        reply = await self._call(
            lambda redis: redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                self._claim_idle_ms,
                self._claim_cursor,
                count=self._count,
            )
        )
        self._claim_cursor = _text(reply[0])
        if self._stats["retries"] > retries:
            self._own_cursor = "0-0"  # a lost reply may have claimed entries for us: see _read
        for entry in reply[1]:
            if entry.field_values is None:
                continue  # trimmed away while pending
            self._take(Entry(_text(entry.identifier), entry.field_values, claimed=True))
            self._stats["claimed"] += 1

    async def _keep_held(self) -> None:
        """Reset the idle time of entries held for half of ``claim_idle``, so none is claimed."""
        horizon = trio.current_time() - self._claim_idle_ms / 2000
        old = [entry_id for entry_id, since in self._held_since.items() if since <= horizon]
        if not old:
            return
        await self._call(
            lambda redis: redis.xclaim(self.stream, self.group, self.consumer, 0, old, justid=True)
        )
        now = trio.current_time()
        for entry_id in old:
            self._held_since[entry_id] = now

    async def _clean_up(self) -> None:
        async def look(redis: Any) -> tuple[Any, Any]:
            async with redis.pipeline(transaction=False) as pipe:
                groups = pipe.xinfo_groups(self.stream)
                consumers = pipe.xinfo_consumers(self.stream, self.group)
            return await groups, await consumers

        groups, consumers = await self._call(look)
        for info in groups:
            if _text(info[b"name"]) == self.group:
                lag = info.get(b"lag")
                self._lag = int(lag) if lag is not None else -1
                self._group_pending = int(info[b"pending"])
        for info in consumers:
            name = _text(info[b"name"])
            stale = int(info[b"idle"]) >= self._stale_ms
            if name != self.consumer and stale and int(info[b"pending"]) == 0:
                await self._call(self._forget(name))
                self._stats["deleted"] += 1

    def _forget(self, consumer: str) -> Callable[[Any], Awaitable[int]]:
        return lambda redis: redis.xgroup_delconsumer(self.stream, self.group, consumer)

    async def _ack(self, ids: list[str]) -> None:
        for start in range(0, len(ids), 4096):
            part = ids[start : start + 4096]
            await self._call(self._acknowledge(part))
            self._stats["acked"] += len(part)
        for entry_id in ids:
            self._held_since.pop(entry_id, None)

    def _acknowledge(self, ids: list[str]) -> Callable[[Any], Awaitable[int]]:
        return lambda redis: redis.xack(self.stream, self.group, ids)

    async def _ack_settled(self) -> None:
        """Forever: acknowledge each settle point's entries, one round trip each."""
        while True:
            self._acking = await self.acks.take_settled()
            await self._ack(self._acking)
            self._acking = []

    async def _ack_rest(self) -> None:
        """On exit: what the loop was acknowledging when stopped, and what settled since."""
        self.acks.check()
        ids, self._acking = self._acking + self.acks.take_settled_nowait(), []
        if ids:
            await self._ack(ids)


@asynccontextmanager
async def open_group_source(
    client: RedisClient,
    stream: str,
    group: str,
    *,
    consumer: str | None = None,
    count: int = 256,
    block: float = 0.2,
    max_unacked: int = 4096,
    claim_idle: float = 30.0,
    claim_interval: float | None = None,
    max_deliveries: int = 5,
    dead_letter: str | None = None,
    stale_after: float = 3600.0,
    until_idle: float | None = None,
    start: str = "0",
) -> AsyncIterator[GroupSource]:
    """Read ``stream`` through consumer group ``group`` for the block's duration.

    Use the yielded source as an ``open_pipeline`` source: the pipeline
    binds its ``acks``. On exit, what the pipeline settled is acknowledged
    (shielded, within two client timeouts); the rest stays pending.

    Args:
        client: the connection (its ``timeout`` bounds each command).
        stream: the stream's key.
        group: the consumer group, created (with the stream) if missing.
        consumer: this consumer's name; unique per process by default.
        count: the most entries one read or claim takes.
        block: how long one ``XREADGROUP`` waits for new entries (seconds,
            below the client's timeout).
        max_unacked: entries handed over and not settled before reading
            pauses (the work redone after a crash).
        claim_idle: how long an entry stays pending before another consumer
            may claim it (seconds).
        claim_interval: how often to look for entries to claim (default
            half of ``claim_idle``).
        max_deliveries: deliveries after which an entry is dead-lettered.
        dead_letter: the dead-letter stream (default ``<stream>:dead``).
        stale_after: idle seconds after which a consumer with nothing
            pending is removed from the group.
        until_idle: end the source (cleanly) once nothing was read for this
            long and nothing is pending here; ``None``: tail forever.
        start: where a newly created group starts reading (``"0"``: the
            whole stream, ``"$"``: new entries only).
    """
    source = GroupSource(
        client,
        stream,
        group,
        consumer=consumer,
        count=count,
        block=block,
        max_unacked=max_unacked,
        claim_idle=claim_idle,
        claim_interval=claim_interval,
        max_deliveries=max_deliveries,
        dead_letter=dead_letter,
        stale_after=stale_after,
        until_idle=until_idle,
        start=start,
    )
    await source.create_group()
    with ungrouped():  # the body's error comes out as itself, not in a group
        async with trio.open_nursery() as nursery:
            nursery.start_soon(source._ack_settled)
            nursery.start_soon(source._keep_held_forever)
            try:
                yield source
            finally:
                nursery.cancel_scope.cancel()
                with trio.move_on_after(2 * client.timeout) as scope:
                    scope.shield = True
                    await source._ack_rest()


_LIVE: weakref.WeakSet[GroupSource] = weakref.WeakSet()


def live_sources() -> list[GroupSource]:
    """The group sources of this process not yet garbage-collected, in no order.

    Each files itself when made, weakly, so one the program dropped leaves by
    itself: an exporter (``flowkit_http``'s ``/metrics``) reads their
    statistics at scrape time without being wired to them.
    """
    return list(_LIVE)
