"""RedisSessionStore against a real redis-server, with several "instances".

An instance here is its own RedisClient and RedisSessionStore on the same
Redis: what two flowkit processes would have. The TTLs are short (real Redis
time), the waits bounded by ``fail_after``. The principal binding is the
core's (it reads the stored principal): tests/integration/flowkit_redis/test_shared.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from flowkit.mcp._shared import SessionRecord
from flowkit_redis import (
    Keys,
    RedisClient,
    RedisSessionStore,
    SessionCapReached,
    StoreUnavailable,
)

from ._server import RedisServer


def record(sid: str, principal: str | None = None) -> SessionRecord:
    return SessionRecord(
        sid,
        principal,
        "2025-11-25",
        "initializing",
        "info",
        client_info={"name": "t", "version": "1"},
        client_capabilities={"elicitation": {}},
    )


@asynccontextmanager
async def instances(
    server: RedisServer, keys: Keys, n: int, **settings: Any
) -> AsyncIterator[list[RedisSessionStore]]:
    async with (
        RedisClient.connect(server.url) as a,
        RedisClient.connect(server.url) as b,
        RedisClient.connect(server.url) as c,
    ):
        yield [RedisSessionStore(client, keys=keys, **settings) for client in [a, b, c][:n]]


async def test_saved_on_one_instance_loaded_on_another(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 2) as (a, b):
        await a.save(record("s1", "alice"))
        found = await b.load("s1")
        assert found == record("s1", "alice")
        assert found is not None
        assert found.client_info == {"name": "t", "version": "1"}  # (eq=False fields)
        assert found.client_capabilities == {"elicitation": {}}
        ready = attrs.evolve(record("s1", "alice"), state="ready", log_level="debug")
        await b.save(ready)
        assert await a.load("s1") == ready
        assert await a.count() == 1  # an update takes no second place
        assert await a.load("nope") is None


async def test_running_calls_and_carried_streams_are_seen_everywhere(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 2) as (a, b):
        await a.save(record("s1"))
        await a.call_started("s1", 7, "a.1")
        await a.call_started("s1", "req-x", "a.2")
        await a.attach("s1", "a.1")
        found = await b.load("s1")
        assert found is not None
        assert (found.running, found.attached) == (frozenset({7, "req-x"}), frozenset({"a.1"}))
        await b.call_ended("s1", 7)
        await b.detach("s1", "a.1")
        found = await a.load("s1")
        assert found is not None
        assert (found.running, found.attached) == (frozenset({"req-x"}), frozenset())
        await a.call_started("gone", 1, "a.9")  # a late write never revives a session
        assert await a.load("gone") is None
        assert not await a._client.redis.exists([keys.running("gone")])


async def test_close_on_one_instance_is_unknown_everywhere_at_once(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 3) as (a, b, c):
        await a.save(record("s1"))
        await a.call_started("s1", 1, "a.1")
        assert await c.load("s1") is not None
        assert await b.close("s1")
        assert await a.load("s1") is None
        assert await c.load("s1") is None
        assert not await c.close("s1")
        assert not await a._client.redis.exists([keys.running("s1")])
        assert await a.count() == 0


async def test_idle_expiry_holds_across_instances_and_touch_postpones_it(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 2, idle_timeout=0.3) as (a, b):
        for sid in ("used", "idle"):
            await a.save(record(sid))
            await a.call_started(sid, 1, "a.1")
        with trio.fail_after(5):
            while await a.load("idle") is not None:  # load does not refresh
                await b.touch(["used"])  # b serves requests of "used"
                await trio.sleep(0.05)
        found = await a.load("used")
        assert found is not None
        assert found.running == frozenset({1})  # its calls' registry lives as long
        assert not await a._client.redis.exists([keys.running("idle")])
        assert await b.count() == 1  # "idle"'s place in the cap is free too


async def test_the_cap_is_cluster_wide_with_retry_after(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 3, idle_timeout=2.5, max_sessions=3) as stores:
        for index, store in enumerate(stores):
            await store.save(record(f"s{index}"))
        for store in stores:
            with pytest.raises(SessionCapReached) as info:
                await store.save(record("one-too-many"))
            assert info.value.http_status == 503
            assert 1 <= info.value.retry_after <= 3
        await stores[1].close("s0")
        await stores[2].save(record("s3"))  # the freed place is usable anywhere
        assert await stores[0].count() == 3


async def test_an_expired_session_frees_its_place_in_the_cap(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 2, idle_timeout=0.2, max_sessions=1) as (a, b):
        await a.save(record("s1"))
        with pytest.raises(SessionCapReached):
            await b.save(record("s2"))
        with trio.fail_after(5):
            while True:
                try:
                    await b.save(record("s2"))
                    break
                except SessionCapReached:
                    await trio.sleep(0.05)
        assert await a.load("s1") is None


async def test_sessions_while_redis_is_down_are_503_then_usable_again(
    own_redis: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with RedisClient.connect(own_redis.url) as client:
            store = RedisSessionStore(client, keys=keys)
            await store.save(record("s1"))
            own_redis.stop()
            for operation in (
                store.load("s1"),
                store.save(record("s2")),
                store.close("s1"),
                store.touch(["s1"]),
                store.count(),
            ):
                start = trio.current_time()
                with pytest.raises(StoreUnavailable):
                    await operation
                assert trio.current_time() - start < 2
            own_redis.start()  # empty (no persistence): the session is gone, as after any loss
            await client.wait_up()
            assert await store.load("s1") is None
            await store.save(record("s2"))  # the scripts are loaded again by themselves
            assert await store.load("s2") == record("s2")


def test_settings_are_checked() -> None:
    client = RedisClient("redis://h")
    with pytest.raises(ValueError, match="idle_timeout"):
        RedisSessionStore(client, idle_timeout=0)
    with pytest.raises(ValueError, match="max_sessions"):
        RedisSessionStore(client, max_sessions=True)
