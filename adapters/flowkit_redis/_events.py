"""The Redis event store: one Redis stream per MCP stream, one entry per coalesced write.

Layout and costs:

* One Redis stream per MCP stream (``Keys.stream``), trimmed with
  ``MAXLEN ~`` and given a TTL on every append, and an index set of the
  session's streams with the same TTL: nothing this store writes outlives
  ``ttl`` after its last use (unbounded streams are the classic leak).
* One entry per *write*, not per event: the events the adapter coalesced into
  one socket write are stored as one entry (their bytes joined, plus their
  lengths), so the hot path costs one round trip and one ``XADD`` per write
  whatever the number of events. A write larger than ``max_entry_bytes`` is
  split into several entries (still one round trip); a single event larger
  than it is refused (:class:`EventTooLarge`).
* The entry id is ``<seq of its last event>-1`` (``-1`` because Redis refuses
  ``0-0``). Ids of a stream increase, so an append that is sent again (a
  retry after a timeout) is recognised by Redis and ignored: a write is
  stored at most once, whatever the retries.
* Replay after a ``Last-Event-ID`` cursor is an exclusive ``XRANGE`` from
  ``(<cursor>-1``, read in chunks of ``replay_chunk`` entries: a long log is
  never joined into one buffer. Only the first entry may need cutting (the
  cursor can fall inside a coalesced write); every other entry is sent as the
  bytes it was stored as.
* A stream's end (the core's ``StreamEnded``) is a flag on its final write,
  or an empty entry ``<seq>-2`` after its last one when it ended without a
  final event (a cancel).
* Each append publishes on the stream's wake-up channel (``Keys.wake``,
  tagged like the stream's key, so in its slot): ``PUBLISH`` on a standalone
  Redis, ``SPUBLISH`` on a Cluster (the subscriber is then sharded, and the
  message stays on the stream's shard instead of reaching every node); a follower
  (:meth:`RedisEventStore.follow`, a resume while the call runs, here or on
  another instance) waits on :class:`~flowkit_redis.Wakeups` between reads
  but re-reads the stream, the only truth, on every wake-up and at least
  every ``poll_interval``: pub/sub is at-most-once. It stops at the end flag,
  or when the stream is gone (expired, its session deleted).

The ordering rule that makes resumption exact: **append to the store before
sending to the client.** The adapter awaits :meth:`append` and only then
writes those bytes to the socket; so any event a client has seen is already
in Redis, and a replay from the client's last id cannot miss one. If the
append fails (:class:`~flowkit_redis.StoreUnavailable`), the bytes are not
sent. Exactly-once then rests on three things: ids that increase within a
stream, replay that starts strictly after the client's cursor, and each
event stored once (explicit ids).
"""

from __future__ import annotations

import array
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio

from flowkit.mcp import RequestId

from ._batch import Call
from ._client import RedisClient
from ._keys import Keys
from ._sessions import instance_of
from ._wakeups import Wakeups, Watch

__all__ = ["EventTooLarge", "RedisEventStore", "RedisFollower", "Replay"]

# {publish} is PUBLISH, or SPUBLISH when the wake-ups are sharded (a Cluster:
# the channel shares the stream key's hash tag, so the script may publish on it).

# KEYS: stream log, stream index. ARGV: ttl_ms, maxlen, stream_id, channel,
# then 5 per entry: id, first seq, joined events, packed lengths, final ("1"/"").
# Returns the number of entries stored (an entry sent again is skipped).
_APPEND = """
local stored = 0
for i = 5, #ARGV, 5 do
    local fields = {'f', ARGV[i + 1], 'd', ARGV[i + 2]}
    if ARGV[i + 3] ~= '' then table.insert(fields, 'o'); table.insert(fields, ARGV[i + 3]) end
    if ARGV[i + 4] ~= '' then table.insert(fields, 'x'); table.insert(fields, '1') end
    local ok = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ARGV[i], unpack(fields))
    if type(ok) == 'table' and ok.err then
        if not string.find(ok.err, 'equal or smaller', 1, true) then return redis.error_reply(ok.err) end
    else
        stored = stored + 1
    end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
if stored > 0 then redis.call('{publish}', ARGV[4], '') end
return stored
"""

# KEYS: stream log. ARGV: maxlen, channel. Marks the end of a stream whose
# last write carries no end flag: an empty entry "<last seq>-*" (so "-2"),
# flagged. Nothing when the stream is gone or already ended.
_END = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 then return 0 end
local fields = last[1][2]
for i = 1, #fields, 2 do if fields[i] == 'x' then return 0 end end
local seq = string.match(last[1][1], '^(%d+)-')
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], seq .. '-*', 'f', seq, 'd', '', 'x', '1')
redis.call('{publish}', ARGV[2], '')
return 1
"""

# KEYS: stream index, then (fetched by the caller) nothing else; deletes the
# index and every stream it names. All keys share the session's slot.
_FORGET = """
local streams = redis.call('SMEMBERS', KEYS[1])
for _, stream_id in ipairs(streams) do redis.call('DEL', ARGV[1] .. stream_id) end
redis.call('DEL', KEYS[1])
return #streams
"""


class EventTooLarge(ValueError):
    """One encoded event exceeds ``max_entry_bytes``: it cannot be stored."""


@attrs.frozen
class _Entry:
    first: int
    last: int
    data: bytes
    lengths: bytes  # packed uint32 lengths; empty for a single event
    final: bool


class RedisEventStore:
    """Resumable SSE streams in Redis, shared by every instance.

    Args:
        client: the connection (:class:`RedisClient`).
        wakeups: the instance's pub/sub wake-ups, for :meth:`follow`; the
            appends publish as it subscribes (``SPUBLISH`` if sharded).
        keys: the key layout (its prefix).
        ttl: seconds every key lives after its stream's last append.
        max_entries_per_stream: ``MAXLEN ~`` bound (entries, i.e. writes).
        max_entry_bytes: the largest entry; larger writes are split.
        replay_chunk: entries read per ``XRANGE`` when replaying.
        poll_interval: the longest a follower waits without re-reading.
    """

    def __init__(
        self,
        client: RedisClient,
        wakeups: Wakeups,
        *,
        keys: Keys | None = None,
        ttl: float = 3600.0,
        max_entries_per_stream: int = 1000,
        max_entry_bytes: int = 1 << 20,
        replay_chunk: int = 128,
        poll_interval: float = 1.0,
    ) -> None:
        if not ttl > 0 or not poll_interval > 0:
            raise ValueError("ttl and poll_interval must be > 0")
        for name, value in (
            ("max_entries_per_stream", max_entries_per_stream),
            ("max_entry_bytes", max_entry_bytes),
            ("replay_chunk", replay_chunk),
        ):
            if isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, not {value!r}")
        self._client = client
        self._wakeups = wakeups
        self.keys = keys if keys is not None else Keys()
        self._ttl_ms = str(max(1, round(ttl * 1000)))
        self._maxlen = str(max_entries_per_stream)
        self._max_entry = max_entry_bytes
        self._chunk = replay_chunk
        self._poll = poll_interval
        publish = "SPUBLISH" if wakeups.sharded else "PUBLISH"  # as the followers subscribe
        self._append = client.redis.register_script(_APPEND.replace("{publish}", publish))
        self._forget = client.redis.register_script(_FORGET)
        self._end = client.redis.register_script(_END.replace("{publish}", publish))

    async def append(
        self,
        session_id: str,
        stream_id: str,
        first_seq: int,
        events: Sequence[bytes],
        *,
        final: bool = False,
    ) -> None:
        """Store one write: ``events`` are the stream's seqs ``first_seq, first_seq+1, ...``.

        One round trip. ``final`` marks the stream's last write (the response
        that ends it), which tells followers to stop.

        Raises:
            EventTooLarge: one event is larger than ``max_entry_bytes``.
            StoreUnavailable: Redis cannot be reached (do not send the events).
        """
        call = self.append_call(session_id, stream_id, first_seq, events, final=final)
        if call is not None:
            script, keys, args = call
            await self._client.run(lambda _: script(keys=keys, args=args))

    def append_call(
        self,
        session_id: str,
        stream_id: str,
        first_seq: int,
        events: Sequence[bytes],
        *,
        final: bool = False,
    ) -> Call | None:
        """:meth:`append` as a script call for a :class:`~flowkit_redis._batch.Batch`."""
        if not events:
            return None
        args: list[str | bytes] = [
            self._ttl_ms,
            self._maxlen,
            stream_id,
            self.keys.wake(session_id, stream_id),
        ]
        entries = self._entries(first_seq, events, final)
        for entry in entries:
            args += (
                f"{entry.last}-1",
                str(entry.first),
                entry.data,
                entry.lengths,
                "1" if entry.final else "",
            )
        keys = [self.keys.stream(session_id, stream_id), self.keys.streams(session_id)]
        return self._append, keys, args

    def _entries(self, first_seq: int, events: Sequence[bytes], final: bool) -> list[_Entry]:
        """Group ``events`` into entries of at most ``max_entry_bytes``."""
        lengths = list(map(len, events))
        if sum(lengths) <= self._max_entry:  # the usual case: one entry, no loop
            return [self._entry(first_seq, events, final)]
        entries: list[_Entry] = []
        start = 0
        size = 0
        for index, event in enumerate(events):
            if len(event) > self._max_entry:
                raise EventTooLarge(
                    f"an event of {len(event)} bytes exceeds max_entry_bytes={self._max_entry}"
                )
            if size + len(event) > self._max_entry:
                entries.append(self._entry(first_seq + start, events[start:index], False))
                start, size = index, 0
            size += len(event)
        entries.append(self._entry(first_seq + start, events[start:], final))
        return entries

    @staticmethod
    def _entry(first: int, events: Sequence[bytes], final: bool) -> _Entry:
        lengths = array.array("I", map(len, events)).tobytes() if len(events) > 1 else b""
        return _Entry(first, first + len(events) - 1, b"".join(events), lengths, final)

    async def replay(self, session_id: str, stream_id: str, after: int) -> Replay | None:
        """The events of a stream after seq ``after``, in chunks; ``None`` if unknown.

        ``after=-1`` replays the whole retained stream.

        A stream is unknown when it never existed in this session, expired,
        or was forgotten: the caller answers 404 as for an unknown id.
        """
        key = self.keys.stream(session_id, stream_id)
        replay = Replay(self, key, after, None)
        exists, entries = await self._first_read(key, replay.next_id)
        if not exists:
            return None
        replay.pending = entries
        return replay

    async def end(self, session_id: str, stream_id: str) -> None:
        """Mark the end of a stream whose last write was not ``final`` (one round trip)."""
        script, keys, args = self.end_call(session_id, stream_id)
        await self._client.run(lambda _: script(keys=keys, args=args))

    def end_call(self, session_id: str, stream_id: str) -> Call:
        """:meth:`end` as a script call for a :class:`~flowkit_redis._batch.Batch`."""
        keys = [self.keys.stream(session_id, stream_id)]
        return self._end, keys, [self._maxlen, self.keys.wake(session_id, stream_id)]

    @asynccontextmanager
    async def follow(
        self, session_id: str, stream_id: str, after: int
    ) -> AsyncIterator[RedisFollower]:
        """Follow a stream after seq ``after``: read, wait for a write, read again, to its end.

        Watches the stream's wake-up channel for the duration of the block,
        so a write after any :meth:`RedisFollower.read` wakes the next wait.
        """
        key = self.keys.stream(session_id, stream_id)
        async with self._wakeups.watching(self.keys.wake(session_id, stream_id)) as watch:
            yield RedisFollower(self, Replay(self, key, after, None), watch, session_id, stream_id)

    async def _lost(self, session_id: str, stream_id: str) -> tuple[bool, RequestId | None]:
        """Whether the stream's instance lost its lease; the request id its call runs as.

        One round trip: the lease of the instance the stream id names, and the
        session's running calls (request id -> stream id).
        """
        lease = self.keys.lease(instance_of(stream_id))
        running = self.keys.running(session_id)

        async def read(redis: Any) -> tuple[Any, Any]:
            async with redis.pipeline(transaction=False) as pipe:
                alive = pipe.exists([lease])
                calls = pipe.hgetall(running)
            return await alive, await calls

        alive, calls = await self._client.run(read)
        if alive:
            return False, None
        for field, stream in calls.items():
            if stream.decode() == stream_id:
                request_id: RequestId = orjson.loads(field)
                return True, request_id
        return True, None

    async def forget_session(self, session_id: str) -> None:
        """Delete every stream of a session (it ended). One round trip."""
        prefix = self.keys.stream(session_id, "")
        keys = [self.keys.streams(session_id)]
        await self._client.run(lambda _: self._forget(keys=keys, args=[prefix]))

    async def _read(self, key: str, after_id: str) -> Any:
        return await self._client.run(
            lambda redis: redis.xrange(key, f"({after_id}", "+", count=self._chunk)
        )

    async def _first_read(self, key: str, after_id: str) -> tuple[Any, Any]:
        """Whether the stream exists, and its first chunk after ``after_id``: one round trip."""

        async def read(redis: Any) -> tuple[Any, Any]:
            async with redis.pipeline(transaction=False) as pipe:
                exists = pipe.exists([key])
                entries = pipe.xrange(key, f"({after_id}", "+", count=self._chunk)
            return await exists, await entries

        exists, entries = await self._client.run(read)
        return exists, entries


class RedisFollower:
    """A ``flowkit.mcp`` ``Follower`` over one Redis stream (:meth:`RedisEventStore.follow`)."""

    def __init__(
        self, store: RedisEventStore, cursor: Replay, watch: Watch, session_id: str, stream_id: str
    ) -> None:
        self._store = store
        self._cursor = cursor
        self._watch = watch
        self._session_id = session_id
        self._stream_id = stream_id
        self._gone = False
        self._lost: RequestId | None = None

    @property
    def lost(self) -> RequestId | None:
        """The followed call's instance died (its lease expired): the call's request id.

        Found by :meth:`wait` when a poll interval passed without a write;
        reset by the next :meth:`read`. A stream of a dead instance that runs
        no call (a GET stream) is :attr:`ended` instead.
        """
        return self._lost

    @property
    def ended(self) -> bool:
        """The end flag was read, or the stream is gone (expired, forgotten)."""
        return self._cursor.ended or self._gone

    @property
    def last_seq(self) -> int:
        """The cursor: the seq of the last event read."""
        return self._cursor.last_seq

    async def read(self) -> list[bytes]:
        """Up to ``replay_chunk`` entries after the cursor (one round trip), as their bytes."""
        self._watch.arm()  # before reading: a write after the read still wakes wait()
        self._lost = None
        cursor = self._cursor
        # Shielded (the client's deadline bounds it): a read cancelled when
        # the client leaves would give its connection back to the pool with
        # a reply still owed, and the next command on it would wait for ever.
        with trio.CancelScope(shield=True):
            exists, entries = await self._store._first_read(cursor._key, cursor.next_id)
        if not exists:
            self._gone = True
            return []
        return cursor.take(entries)

    async def wait(self) -> None:
        """Until a wake-up since the last :meth:`read`, or ``poll_interval`` at most.

        After a silent poll interval, checks the lease of the instance the
        stream's id names (:attr:`lost`): a silent stream is what a dead
        instance's looks like.
        """
        with trio.move_on_after(self._store._poll):
            await self._watch.wait()
            return
        with trio.CancelScope(shield=True):  # as read(): no reply left owed on a pooled connection
            dead, request_id = await self._store._lost(self._session_id, self._stream_id)
        if dead and request_id is None:
            self._gone = True  # nothing runs it any more: it will never end by itself
        self._lost = request_id


def _entry_id(seq: int) -> str:
    """The id of the entry whose last event is ``seq``; ``0-0`` (before all) for -1."""
    return f"{seq}-1" if seq >= 0 else "0-0"


class Replay:
    """An async iterator of chunks (lists of encoded events) after a cursor.

    Each chunk is one ``XRANGE`` (``replay_chunk`` entries at most). After
    iteration, :attr:`ended` tells whether the stream's end was among them,
    and :attr:`last_seq` is the new cursor.
    """

    def __init__(self, store: RedisEventStore, key: str, after: int, first: Any) -> None:
        self._store = store
        self._key = key
        self.pending: Any = first  # entries read, not yet taken
        self.next_id = _entry_id(after)  # the last entry read
        self._exhausted = False  # the last read returned less than a full chunk
        self.last_seq = after
        self.ended = False

    def __aiter__(self) -> Replay:
        return self

    async def __anext__(self) -> list[bytes]:
        while True:
            entries = self.pending
            if entries is None:
                if self.ended or self._exhausted:
                    raise StopAsyncIteration
                entries = await self._store._read(self._key, self.next_id)
            self.pending = None
            if not entries:
                raise StopAsyncIteration
            self._exhausted = len(entries) < self._store._chunk
            chunk = self.take(entries)
            if chunk:
                return chunk

    def take(self, entries: Any) -> list[bytes]:
        """The events of ``entries`` (read after :attr:`next_id`) after the cursor; moves it."""
        if entries:
            self.next_id = entries[-1].identifier.decode("ascii")
        return [data for data in map(self._events, entries) if data]

    def _events(self, entry: Any) -> bytes:
        """The bytes of one entry after the cursor; updates the cursor."""
        fields = entry.field_values
        first = int(fields[b"f"])
        data: bytes = fields[b"d"]
        last = int(entry.identifier.split(b"-", 1)[0])
        if first <= self.last_seq:  # the cursor falls inside this write
            lengths = array.array("I")
            lengths.frombytes(fields.get(b"o", b""))
            skip = self.last_seq - first + 1
            data = data[sum(lengths[:skip]) :] if skip < len(lengths) else b""
        self.last_seq = max(self.last_seq, last)
        if b"x" in fields:
            self.ended = True
        return data
