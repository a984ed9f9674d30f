"""The Redis session store: any instance serves any request of any session.

A session is three keys tagged by its id (one Cluster slot): a hash of its
record (principal, revision, state, log level, client info and capabilities,
and the uris of its ``resources/subscribe``),
a hash of its running calls (request id -> stream id) and a set of the
streams a response carries right now. All three share one TTL, the idle
timeout, refreshed by :meth:`RedisSessionStore.touch`; so idle expiry holds
across the cluster with no reaper: Redis forgets a session nobody used for
``idle_timeout`` seconds. An instance that holds a session busy (a call
running, a GET open) keeps touching it, as the in-memory registry never
expires a busy session.

* **Lookup reads Redis on every request** (:meth:`load`, one script, one
  round trip): a DELETE on any instance therefore makes the session unknown
  (404) on every instance at once. No instance caches "this session exists".
* **Principal binding**: the record keeps the principal that initialized the
  session; the core refuses every other principal (404), on every instance,
  since every instance reads the same record.
* **The cap is cluster-wide**: a sorted set (``Keys.live_sessions``) of live
  ids scored by their deadline on Redis's clock (``TIME``, so the instances'
  clocks do not matter). Creating a session is admitted by one script on
  that one key: drop the members whose deadline passed, refuse when
  ``max_sessions`` remain (``Retry-After`` until the earliest deadline), else
  add. It is the one key not tagged by session, so admitting and creating
  are two steps on two slots; a failed create gives its place back.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import orjson

from flowkit.mcp import RequestId, SessionRecord

from ._batch import Batch, Call
from ._client import RedisClient, StoreUnavailable
from ._keys import Keys

__all__ = ["RedisSessionStore", "SessionCapReached", "instance_of"]

# KEYS: the live-session set. ARGV: id, ttl_ms, cap.
# Returns {1, 0} when admitted, {2, 0} when the id holds a place already (its
# owner's: not ours to give back), {0, ms until the earliest deadline} when full.
_ADMIT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {2, 0} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, tonumber(first[2]) - now}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, 0}
"""

# KEYS: the session hash. ARGV: mode ('create' | 'update'), ttl_ms, field/value pairs.
# create: 0 if the id is taken (never overwritten). update: 0 if it is gone.
_SAVE = """
local exists = redis.call('EXISTS', KEYS[1]) == 1
if (ARGV[1] == 'create') == exists then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: session hash, running hash, attached set.
# Returns {record fields, running fields, attached members}, or {} if no session.
_LOAD = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {} end
return {fields, redis.call('HGETALL', KEYS[2]), redis.call('SMEMBERS', KEYS[3])}
"""

# KEYS: session hash, running hash, attached set. ARGV: ttl_ms. Only if it exists.
_TOUCH = """
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 1
"""

# KEYS: session hash, attached set. ARGV: 'HSET' | 'HDEL', the uri's field ('u:' .. uri).
# Returns {} if no session, else {version, the uris subscribed now, attached members}.
_SUBSCRIBE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if ARGV[1] == 'HSET' then
    redis.call('HSET', KEYS[1], ARGV[2], '1')
else
    redis.call('HDEL', KEYS[1], ARGV[2])
end
local version = redis.call('HINCRBY', KEYS[1], 'sv', 1)
local uris = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 'u:' then uris[#uris + 1] = string.sub(field, 3) end
end
return {version, uris, redis.call('SMEMBERS', KEYS[2])}
"""

# KEYS: the live-session set. ARGV: ttl_ms, then ids. Pushes their deadlines.
_REFRESH = """
local t = redis.call('TIME')
local deadline = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
"""

# KEYS: the live-session set. Drops passed deadlines, returns how many remain.
_COUNT = """
local t = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t[1] * 1000 + math.floor(t[2] / 1000))
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: a set or hash of the session, the session hash. ARGV: ttl_ms, command, args...
# Runs the command only while the session exists (a late write never revives it).
_MEMBER = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call(ARGV[2], KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


class SessionCapReached(StoreUnavailable):
    """The cluster-wide session cap is reached: ``503`` with ``Retry-After`` (as in memory)."""


def _fields(record: SessionRecord) -> list[str | bytes]:
    """The record's hash fields, flattened for HSET (no field for a ``None`` principal)."""
    out: list[str | bytes] = ["v", record.version, "s", record.state, "l", record.log_level]
    if record.principal is not None:
        out += ("p", record.principal)
    out += ("ci", orjson.dumps(record.client_info), "cc", orjson.dumps(record.client_capabilities))
    return out


def _pairs(flat: Any) -> dict[bytes, bytes]:
    flat = list(flat)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _record(session_id: str, loaded: Any) -> SessionRecord:
    fields = _pairs(loaded[0])
    principal = fields.get(b"p")
    # resources/subscribe: one field per uri, 'u:<uri>', and their version 'sv'.
    subscriptions = frozenset(name[2:].decode() for name in fields if name[:2] == b"u:")
    return SessionRecord(
        id=session_id,
        principal=principal.decode() if principal is not None else None,
        version=fields[b"v"].decode(),
        state=fields[b"s"].decode(),
        log_level=fields[b"l"].decode(),
        client_info=orjson.loads(fields[b"ci"]),
        client_capabilities=orjson.loads(fields[b"cc"]),
        running=frozenset(orjson.loads(request_id) for request_id in _pairs(loaded[1])),
        attached=frozenset(stream.decode() for stream in loaded[2]),
        subscriptions=subscriptions,
        subscriptions_version=int(fields.get(b"sv", 0)),
    )


def instance_of(stream_id: str) -> str:
    """The instance a shared endpoint's stream id names (``<instance>.<n>``)."""
    return stream_id.rpartition(".")[0]


class RedisSessionStore:
    """Sessions in Redis, shared by every instance, with a cluster-wide cap.

    Args:
        client: the connection.
        keys: the key layout (its prefix).
        idle_timeout: seconds a session lives after its last use (the TTL).
        max_sessions: live sessions allowed across the cluster.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        keys: Keys | None = None,
        idle_timeout: float = 1800.0,
        max_sessions: int = 10_000,
    ) -> None:
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be > 0")
        if isinstance(max_sessions, bool) or max_sessions < 1:
            raise ValueError(f"max_sessions must be an int >= 1, not {max_sessions!r}")
        self._client = client
        self.keys = keys if keys is not None else Keys()
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._ttl_ms = str(max(1, round(idle_timeout * 1000)))
        redis = client.redis
        self._admit = redis.register_script(_ADMIT)
        self._save = redis.register_script(_SAVE)
        self._load = redis.register_script(_LOAD)
        self._touch = redis.register_script(_TOUCH)
        self._refresh = redis.register_script(_REFRESH)
        self._count = redis.register_script(_COUNT)
        self._member = redis.register_script(_MEMBER)
        self._subscribe = redis.register_script(_SUBSCRIBE)

    def _session_keys(self, session_id: str) -> list[str]:
        keys = self.keys
        return [keys.session(session_id), keys.running(session_id), keys.attached(session_id)]

    async def load(self, session_id: str) -> SessionRecord | None:
        """The session with its running calls and carried streams; ``None`` if not live.

        One round trip; reading does not postpone expiry (:meth:`touch` does).
        """
        keys = self._session_keys(session_id)
        loaded: Any = await self._client.run(lambda _: self._load(keys=keys))
        return _record(session_id, loaded) if loaded else None

    async def save(self, record: SessionRecord) -> None:
        """Store a session's record: update it if live, else create it (admitted by the cap).

        Raises:
            SessionCapReached: a new session while the cluster holds ``max_sessions``.
            StoreUnavailable: Redis cannot be reached.
        """
        key = [self.keys.session(record.id)]
        fields = _fields(record)
        updated: Any = await self._client.run(
            lambda _: self._save(keys=key, args=["update", self._ttl_ms, *fields])
        )
        if updated:
            return
        live = [self.keys.live_sessions()]
        answer: Any = await self._client.run(
            lambda _: self._admit(keys=live, args=[record.id, self._ttl_ms, self.max_sessions])
        )
        admitted, wait_ms = answer
        if not admitted:
            raise SessionCapReached(
                "Too many sessions; retry later", retry_after=max(1, math.ceil(wait_ms / 1000))
            )
        try:
            created: Any = await self._client.run(
                lambda _: self._save(keys=key, args=["create", self._ttl_ms, *fields])
            )
        except BaseException:
            if admitted == 1:
                await self._give_back(record.id)
            raise
        if not created and admitted == 1:  # created meanwhile by another instance
            await self._give_back(record.id)

    async def _give_back(self, session_id: str) -> None:
        live = self.keys.live_sessions()
        # If Redis is gone, the member's deadline frees the place within idle_timeout.
        with contextlib.suppress(StoreUnavailable):
            await self._client.run(lambda redis: redis.zrem(live, [session_id]))

    async def touch(self, session_ids: list[str]) -> None:
        """Postpone the expiry of sessions in use (or held busy here). One round trip."""
        if not session_ids:
            return
        batch = Batch(self._client)
        batch.add(self.touch_calls(session_ids))
        await batch.send()

    def touch_calls(self, session_ids: list[str]) -> list[Call]:
        """:meth:`touch` as script calls for a :class:`~flowkit_redis._batch.Batch`."""
        calls: list[Call] = [
            (self._touch, self._session_keys(sid), [self._ttl_ms]) for sid in session_ids
        ]
        calls.append((self._refresh, [self.keys.live_sessions()], [self._ttl_ms, *session_ids]))
        return calls

    async def close(self, session_id: str) -> bool:
        """End a session everywhere at once; ``False`` if it was not live."""
        keys = self._session_keys(session_id)
        live = self.keys.live_sessions()

        async def remove(redis: Any) -> Any:
            async with redis.pipeline(transaction=False) as pipe:
                deleted = pipe.delete(keys)
                pipe.zrem(live, [session_id])
            return await deleted

        return bool(await self._client.run(remove))

    async def holders(self, session_id: str) -> set[str]:
        """The instances running a call of the session or carrying one of its streams.

        Stream ids name their instance (``<instance>.<n>``): the registry of
        running calls (request id -> stream id) and the carried streams say
        where a DELETE must reach.
        """
        running, attached = self.keys.running(session_id), self.keys.attached(session_id)

        async def read(redis: Any) -> Any:
            async with redis.pipeline(transaction=False) as pipe:
                streams = pipe.hvals(running)
                carried = pipe.smembers(attached)
            return [*(await streams), *(await carried)]

        streams = await self._client.run(read)
        return {instance_of(stream.decode()) for stream in streams} - {""}

    async def runner(self, session_id: str, request_id: RequestId) -> str | None:
        """The instance running the call ``request_id`` of the session, if it runs."""
        running = self.keys.running(session_id)
        field = orjson.dumps(request_id)
        stream = await self._client.run(lambda redis: redis.hget(running, field))
        return instance_of(stream.decode()) if stream is not None else None

    async def subscribe(
        self, session_id: str, uri: str, subscribed: bool
    ) -> tuple[int, list[str], set[str]] | None:
        """Add (or remove) ``uri`` in the session's subscriptions; ``None`` if it is gone.

        One script, one round trip: the uri is a field of the session's hash
        (``u:<uri>``, which :meth:`save` never rewrites), and ``sv`` counts
        the changes. Returns that count, the uris subscribed now and the
        instances carrying one of the session's streams (where to tell it).
        """
        keys = [self.keys.session(session_id), self.keys.attached(session_id)]
        args = ["HSET" if subscribed else "HDEL", f"u:{uri}"]
        answer: Any = await self._client.run(lambda _: self._subscribe(keys=keys, args=args))
        if not answer:
            return None
        version, uris, attached = answer
        carriers = {instance_of(stream.decode()) for stream in attached} - {""}
        return int(version), [u.decode() for u in uris], carriers

    async def call_started(self, session_id: str, request_id: RequestId, stream_id: str) -> None:
        """A call runs in the session: its request id is taken on every instance."""
        await self._run(self.call_started_call(session_id, request_id, stream_id))

    async def call_ended(self, session_id: str, request_id: RequestId) -> None:
        await self._run(self.call_ended_call(session_id, request_id))

    async def attach(self, session_id: str, stream_id: str) -> None:
        """A response carries the stream now: resuming it elsewhere is a conflict."""
        await self._run(self.attach_call(session_id, stream_id))

    async def detach(self, session_id: str, stream_id: str) -> None:
        await self._run(self.detach_call(session_id, stream_id))

    # The same four as script calls for a Batch (one round trip for many).

    def call_started_call(self, session_id: str, request_id: RequestId, stream_id: str) -> Call:
        running = self.keys.running(session_id)
        return self._member_call(running, session_id, "HSET", orjson.dumps(request_id), stream_id)

    def call_ended_call(self, session_id: str, request_id: RequestId) -> Call:
        running = self.keys.running(session_id)
        return self._member_call(running, session_id, "HDEL", orjson.dumps(request_id))

    def attach_call(self, session_id: str, stream_id: str) -> Call:
        return self._member_call(self.keys.attached(session_id), session_id, "SADD", stream_id)

    def detach_call(self, session_id: str, stream_id: str) -> Call:
        return self._member_call(self.keys.attached(session_id), session_id, "SREM", stream_id)

    def _member_call(self, key: str, session_id: str, *command: str | bytes) -> Call:
        return self._member, [key, self.keys.session(session_id)], [self._ttl_ms, *command]

    async def _run(self, call: Call) -> None:
        script, keys, args = call
        await self._client.run(lambda _: script(keys=keys, args=args))

    async def count(self) -> int:
        """Live sessions across the cluster (members whose deadline has not passed)."""
        live = [self.keys.live_sessions()]
        return int(await self._client.run(lambda _: self._count(keys=live)))
