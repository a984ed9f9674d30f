"""Fixtures: one real redis-server per test session, and one per test that breaks it.

Tests sharing the session's server stay apart by a key prefix of their own
(``keys``), so no test sees another's keys and none needs FLUSHALL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from flowkit_redis import Keys, RedisClient, RedisEventStore, Wakeups

from ._server import RedisClusterServers, RedisServer


@pytest.fixture(scope="session")
def redis_server(
    redis_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """A redis-server for the whole session (tests must not kill it: use ``own_redis``)."""
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(
    redis_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisClusterServers]:
    """A 3-master Redis Cluster for the whole session, started by the test suite itself."""
    cluster = RedisClusterServers(redis_binary, tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_redis(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for one test, which it may kill, restart or pause."""
    server = RedisServer(redis_binary, tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()  # SIGKILL ends a paused (SIGSTOPped) server too


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[RedisClient]:
    async with RedisClient.connect(redis_server.url) as connected:
        yield connected


@pytest.fixture
def keys() -> Keys:
    """A key prefix no other test uses."""
    return Keys(prefix=f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def wakeups(client: RedisClient, nursery: trio.Nursery) -> Wakeups:
    """The instance's wake-up subscriber, running for the test."""
    subscriber = Wakeups(client)
    await nursery.start(subscriber.run)
    return subscriber


@pytest.fixture
def events(client: RedisClient, wakeups: Wakeups, keys: Keys) -> RedisEventStore:
    return RedisEventStore(client, wakeups, keys=keys, ttl=60, replay_chunk=4)
