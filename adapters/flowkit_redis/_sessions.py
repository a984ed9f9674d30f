"""The Redis session store: any instance serves any request of any session.

Each session is a hash (``Keys.session``) whose TTL is the idle timeout and
is refreshed by every use, so idle expiry holds across the cluster with no
reaper: Redis forgets a session nobody touched for ``idle_timeout`` seconds.
An instance that holds a session busy (a call running, a GET stream open)
keeps it alive with :meth:`RedisSessionStore.touch` from its expiry poll, as
the in-memory registry never expires a busy session.

* **Lookup checks Redis on every request** (one round trip): a DELETE on any
  instance therefore makes the session unknown (404) on every instance at
  once. No instance caches "this session exists".
* **Principal binding**: the hash records the principal that initialized the
  session; a lookup by another principal is a miss and does not refresh it,
  on every instance (session-hijacking mitigation, as in memory).
* **The cap is cluster-wide**: a sorted set (``Keys.live_sessions``) of live
  ids scored by their deadline on Redis's clock (``TIME``, so instances'
  clocks do not matter). Admission is one script on that one key: drop the
  members whose deadline passed, refuse when ``max_sessions`` remain (with
  ``Retry-After`` until the earliest deadline), else add. It is the only key
  not tagged by session, so a Cluster keeps it on one slot and the session's
  own keys on theirs; the two are written in two steps (admit, then create;
  a failed create gives its place back).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import attrs
import orjson

from ._client import RedisClient, StoreUnavailable
from ._keys import Keys

__all__ = ["RedisSessionStore", "SessionCapReached", "SessionRecord"]

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

# KEYS: the session hash. ARGV: ttl_ms, then field, value pairs.
# Creates the session; 0 if the id is taken (never overwritten).
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: the session hash. ARGV: ttl_ms, principal ('' for none).
# The session's fields if it exists and is bound to that principal (then its
# TTL is refreshed), else an empty list.
_GET = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {} end
local principal = redis.call('HGET', KEYS[1], 'p') or ''
if principal ~= ARGV[2] then return {} end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return fields
"""

# KEYS: the live-session set. ARGV: ttl_ms, then ids. Pushes their deadlines.
_REFRESH = """
local t = redis.call('TIME')
local deadline = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
"""

# KEYS: the session hash. ARGV: ttl_ms, then field, value pairs. Only if it exists.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


# KEYS: the live-session set. Drops passed deadlines, returns how many remain.
_COUNT = """
local t = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t[1] * 1000 + math.floor(t[2] / 1000))
return redis.call('ZCARD', KEYS[1])
"""


class SessionCapReached(StoreUnavailable):
    """The cluster-wide session cap is reached: ``503`` with ``Retry-After`` (as in memory)."""


@attrs.frozen
class SessionRecord:
    """What every instance must know of a session to serve its requests.

    Attributes:
        session_id: the ``MCP-Session-Id``.
        principal: the auth principal it is bound to (``None``: no auth).
        version: the negotiated protocol revision.
        log_level: the level set by ``logging/setLevel``.
        ready: ``notifications/initialized`` was received.
        client_info: ``clientInfo`` of the ``initialize`` request.
        client_capabilities: the client's ``capabilities``.
    """

    session_id: str
    principal: str | None
    version: str
    log_level: str = "info"
    ready: bool = False
    client_info: Any = None
    client_capabilities: Any = None

    def fields(self) -> list[str | bytes]:
        """The hash's fields, flattened for HSET (no field for a ``None`` principal)."""
        out: list[str | bytes] = [
            "v",
            self.version,
            "l",
            self.log_level,
            "r",
            "1" if self.ready else "0",
        ]
        if self.principal is not None:
            out += ("p", self.principal)
        out += ("ci", orjson.dumps(self.client_info), "cc", orjson.dumps(self.client_capabilities))
        return out

    @classmethod
    def from_fields(cls, session_id: str, flat: list[bytes]) -> SessionRecord:
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        principal = fields.get(b"p")
        return cls(
            session_id=session_id,
            principal=principal.decode() if principal is not None else None,
            version=fields[b"v"].decode(),
            log_level=fields[b"l"].decode(),
            ready=fields[b"r"] == b"1",
            client_info=orjson.loads(fields[b"ci"]),
            client_capabilities=orjson.loads(fields[b"cc"]),
        )


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
        self._create = redis.register_script(_CREATE)
        self._get = redis.register_script(_GET)
        self._refresh = redis.register_script(_REFRESH)
        self._update = redis.register_script(_UPDATE)
        self._count = redis.register_script(_COUNT)

    async def create(self, record: SessionRecord) -> bool:
        """Store a new session; ``False`` if its id is already taken.

        Raises:
            SessionCapReached: the cluster already holds ``max_sessions``.
            StoreUnavailable: Redis cannot be reached.
        """
        live = [self.keys.live_sessions()]
        sid = record.session_id
        answer: Any = await self._client.run(
            lambda _: self._admit(keys=live, args=[sid, self._ttl_ms, self.max_sessions])
        )
        admitted, wait_ms = answer
        if not admitted:
            raise SessionCapReached(
                "Too many sessions; retry later", retry_after=max(1, math.ceil(wait_ms / 1000))
            )
        hash_key = [self.keys.session(sid)]
        try:
            created: Any = await self._client.run(
                lambda _: self._create(keys=hash_key, args=[self._ttl_ms, *record.fields()])
            )
        except BaseException:
            if admitted == 1:
                await self._give_back(sid)
            raise
        if not created and admitted == 1:
            await self._give_back(sid)
        return bool(created)

    async def _give_back(self, session_id: str) -> None:
        live = self.keys.live_sessions()
        # If Redis is gone, the member's deadline frees the place within idle_timeout.
        with contextlib.suppress(StoreUnavailable):
            await self._client.run(lambda redis: redis.zrem(live, [session_id]))

    async def get(self, session_id: str, principal: str | None) -> SessionRecord | None:
        """The session if it exists *and is bound to this principal*; refreshes its TTL.

        One round trip. ``None`` for an unknown, expired, deleted or another
        principal's session: the caller answers 404 as for any unknown id.
        """
        keys = self.keys

        async def lookup(redis: Any) -> Any:
            async with redis.pipeline(transaction=False) as pipe:
                fields: Any = self._get(
                    keys=[keys.session(session_id)],
                    args=[self._ttl_ms, principal or ""],
                    client=pipe,
                )
                self._refresh(
                    keys=[keys.live_sessions()], args=[self._ttl_ms, session_id], client=pipe
                )
            return await fields

        flat = await self._client.run(lookup)
        if not flat:
            return None
        return SessionRecord.from_fields(session_id, list(flat))

    async def update(self, record: SessionRecord) -> bool:
        """Overwrite a live session's fields (ready, log level); ``False`` if it is gone."""
        key = [self.keys.session(record.session_id)]
        updated: Any = await self._client.run(
            lambda _: self._update(keys=key, args=[self._ttl_ms, *record.fields()])
        )
        return bool(updated)

    async def touch(self, session_ids: list[str]) -> None:
        """Keep sessions this instance holds busy alive (from the expiry poll). One round trip."""
        if not session_ids:
            return
        keys = self.keys

        async def refresh(redis: Any) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for sid in session_ids:
                    pipe.pexpire(keys.session(sid), int(self._ttl_ms))
                self._refresh(
                    keys=[keys.live_sessions()], args=[self._ttl_ms, *session_ids], client=pipe
                )

        await self._client.run(refresh)

    async def delete(self, session_id: str) -> bool:
        """End a session everywhere at once; ``False`` if it was not live."""
        keys = self.keys

        async def remove(redis: Any) -> Any:
            async with redis.pipeline(transaction=False) as pipe:
                deleted = pipe.delete([keys.session(session_id)])
                pipe.zrem(keys.live_sessions(), [session_id])
            return await deleted

        return bool(await self._client.run(remove))

    async def count(self) -> int:
        """Live sessions across the cluster (members whose deadline has not passed)."""
        live = [self.keys.live_sessions()]
        return int(await self._client.run(lambda _: self._count(keys=live)))
