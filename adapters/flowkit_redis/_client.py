"""The one door to Redis: a coredis client that fails fast and comes back by itself.

Every store operation runs through :meth:`RedisClient.run`, which gives it a
hard deadline and turns every way Redis can be missing (refused, reset,
unreachable, stalled, loading, read-only replica) into one typed error,
:class:`StoreUnavailable`, that the HTTP adapter maps to ``503`` with
``Retry-After``. A request that needs Redis therefore never waits longer than
``timeout`` (1 s by default; the issue's bound is 2 s).

After a failure the client is *down*: requests fail at once, without a
connection attempt each (a dead Redis must not make every request wait its
timeout), while one background task probes with ``PING`` after delays that
grow exponentially with full jitter (AWS's "exponential backoff and jitter":
``uniform(0, min(cap, base * 2**attempt))``), so N instances do not reconnect
in lock-step. The first successful probe makes it *up* again. Nothing here
ever raises out of the background task or needs a restart.

coredis runs natively on trio (anyio inside): no asyncio bridge.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import coredis
import coredis.exceptions
import coredis.retry
import trio

from ._url import RedisURL

__all__ = ["RedisClient", "StoreUnavailable"]

logger = logging.getLogger("flowkit_redis")

_T = TypeVar("_T")

#: What "Redis is not there" looks like from coredis and trio. A command
#: error (wrong type, bad argument) is not here: that is a bug and propagates.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    coredis.exceptions.ConnectionError,  # refused, reset, BusyLoadingError
    coredis.exceptions.ReadOnlyError,  # a replica during failover
    coredis.exceptions.ClusterDownError,
    coredis.exceptions.ClusterError,  # no node reachable, slots not covered
    coredis.exceptions.RedisClusterError,  # a master down: "could not map", inconsistent PINGs
    coredis.exceptions.TryAgainError,
    coredis.exceptions.AuthenticationError,  # a rotated password is an outage too
    TimeoutError,
    OSError,
    trio.TooSlowError,
)


_BUFFERS = (
    "_write_buffer_in",
    "_write_buffer_out",
    "_push_message_buffer_in",
    "_push_message_buffer_out",
    "_streamed_message_buffer_in",
    "_streamed_message_buffer_out",
)


class _ClosesBuffersOnFailure(coredis.TCPConnection):
    """coredis's TCP connection, minus a leak: closes its buffers when connecting fails.

    coredis 6.9 opens six memory streams per connection object and closes them
    only once connected, so every refused connection leaves them to the GC with
    a ResourceWarning (fatal under ``-W error``, and an outage makes one per
    attempt). Same behaviour otherwise.
    """

    async def _connect(self) -> Any:
        try:
            return await super()._connect()
        except BaseException:
            for name in _BUFFERS:
                getattr(self, name).close()
            raise


class _Connection(_ClosesBuffersOnFailure):
    pass


class _ClusterConnection(_ClosesBuffersOnFailure, coredis.ClusterConnection):
    pass


class _Pool(coredis.ConnectionPool[_Connection]):
    def __init__(self, **kwargs: Any) -> None:
        kwargs["connection_class"] = _Connection
        super().__init__(**kwargs)


class _ClusterPool(coredis.ClusterConnectionPool):
    def __init__(self, **kwargs: Any) -> None:
        kwargs["connection_class"] = _ClusterConnection
        super().__init__(**kwargs)


class StoreUnavailable(Exception):
    """Redis cannot serve this request now: answer ``503`` with ``Retry-After``.

    Attributes:
        retry_after: whole seconds after which a retry may succeed (>= 1).
        http_status: always 503.
    """

    http_status = 503

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The response headers the 503 carries."""
        return [(b"retry-after", str(self.retry_after).encode("ascii"))]


class RedisClient:
    """A coredis connection pool with a deadline per operation and self-healing.

    Use :meth:`connect` (an async context manager); the client is usable only
    inside it.

    Args:
        url: where Redis is (a :class:`RedisURL` or its text).
        timeout: the deadline of one operation, connection included.
        backoff_base: first reconnect delay bound, seconds.
        backoff_cap: largest reconnect delay bound, seconds.
        max_connections: the pool's size (per node on a Cluster).
        cluster: ``url`` is one node of a Redis Cluster: the client learns
            the others and routes each key to its slot's master (coredis's
            cluster client). The stores' keys are hash-tagged by session,
            so their scripts never cross slots.
    """

    def __init__(
        self,
        url: RedisURL | str,
        *,
        timeout: float = 1.0,
        backoff_base: float = 0.05,
        backoff_cap: float = 2.0,
        max_connections: int = 64,
        cluster: bool = False,
    ) -> None:
        if not timeout > 0 or not backoff_base > 0 or not backoff_cap >= backoff_base:
            raise ValueError("timeout and backoff_base must be > 0, backoff_cap >= backoff_base")
        self.url = url if isinstance(url, RedisURL) else RedisURL.parse(url)
        self.timeout = timeout
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        common: dict[str, Any] = {
            "username": self.url.username,
            "password": self.url.password,
            "ssl": self.url.tls,
            "connect_timeout": timeout,
            "stream_timeout": timeout,
            "pool_timeout": timeout,
            "max_connections": max_connections,
            # Retries are ours (fail fast, then back off in the background):
            # coredis's default would retry inside the request's deadline.
            "retry_policy": coredis.retry.NoRetryPolicy(),
        }
        self.cluster = cluster
        self.redis: coredis.Redis[bytes] | coredis.RedisCluster[bytes]
        if cluster:
            if self.url.db:
                raise ValueError("a Redis Cluster has only database 0")
            self.redis = coredis.RedisCluster(
                self.url.host, self.url.port, connection_pool_cls=_ClusterPool, **common
            )
        else:
            self.redis = coredis.Redis(
                self.url.host, self.url.port, self.url.db, connection_pool_cls=_Pool, **common
            )
        self._up = True
        self._went_down = trio.Event()
        self._came_up = trio.Event()
        self._came_up.set()
        self._next_probe = 0.0
        self.outages = 0

    def __repr__(self) -> str:
        state = "up" if self._up else "down"
        return f"RedisClient({self.url.redacted()!r}, {state})"

    @property
    def up(self) -> bool:
        """Whether the last operation or probe reached Redis."""
        return self._up

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: RedisURL | str, **kwargs: Any) -> AsyncIterator[RedisClient]:
        """Open the pool and the reconnect task; close both on exit.

        Redis need not be reachable at entry: the client starts up, and the
        first failing operation turns it down like any later one.
        """
        client = cls(url, **kwargs)
        try:
            async with client.redis, trio.open_nursery() as nursery:
                nursery.start_soon(client._heal)
                try:
                    yield client
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            if isinstance(client.redis, coredis.RedisCluster):
                # coredis 6.9's cluster layout never closes its error stream.
                for end in client.redis.connection_pool.cluster_layout._error_stream:
                    end.close()

    async def run(self, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run ``operation(redis)`` within :attr:`timeout`.

        Raises:
            StoreUnavailable: Redis is down (known already, or found now).
        """
        if not self._up:
            raise self._unavailable("Redis is unavailable")
        try:
            with trio.fail_after(self.timeout):
                return await operation(self.redis)
        except _UNAVAILABLE as exc:
            self._mark_down(exc)
            raise self._unavailable(f"Redis is unavailable ({type(exc).__name__})") from None

    async def wait_up(self) -> None:
        """Return once Redis is reachable (at once if it is)."""
        await self._came_up.wait()

    def _unavailable(self, message: str) -> StoreUnavailable:
        wait = self._next_probe - trio.current_time()
        return StoreUnavailable(message, retry_after=max(1, math.ceil(wait)))

    def _mark_down(self, exc: BaseException) -> None:
        if not self._up:
            return
        self._up = False
        self.outages += 1
        self._came_up = trio.Event()
        self._went_down.set()
        self._next_probe = trio.current_time() + self._backoff_base
        logger.warning(
            "Redis at %s is unavailable (%s); requests that need it get 503 until it is back",
            self.url.redacted(),
            type(exc).__name__,
        )

    async def _heal(self) -> None:
        """Forever: wait until down, then probe with backoff + full jitter until up."""
        while True:
            await self._went_down.wait()
            self._went_down = trio.Event()
            attempt = 0
            while not self._up:
                bound = min(self._backoff_cap, self._backoff_base * 2**attempt)
                delay = random.uniform(0, bound)
                self._next_probe = trio.current_time() + delay
                await trio.sleep(delay)
                attempt += 1
                try:
                    with trio.fail_after(self.timeout):
                        await self.redis.ping()
                except _UNAVAILABLE:
                    continue
                self._up = True
                self._came_up.set()
                logger.warning("Redis at %s is reachable again", self.url.redacted())
