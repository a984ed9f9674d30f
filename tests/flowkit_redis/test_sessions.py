"""RedisSessionStore against a real redis-server, with several "instances".

An instance here is its own RedisClient and RedisSessionStore on the same
Redis: what two flowkit processes would have. The TTLs are short (real Redis
time), the waits bounded by ``fail_after``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from flowkit_redis import (
    Keys,
    RedisClient,
    RedisSessionStore,
    SessionCapReached,
    SessionRecord,
    StoreUnavailable,
)

from ._server import RedisServer


def record(sid: str, principal: str | None = None) -> SessionRecord:
    return SessionRecord(
        sid,
        principal,
        "2025-11-25",
        client_info={"name": "t", "version": "1"},
        client_capabilities={"elicitation": {}},
    )


@asynccontextmanager
async def instances(
    server: RedisServer, keys: Keys, n: int, **settings: float
) -> AsyncIterator[list[RedisSessionStore]]:
    async with (
        RedisClient.connect(server.url) as a,
        RedisClient.connect(server.url) as b,
        RedisClient.connect(server.url) as c,
    ):
        clients = [a, b, c][:n]
        yield [RedisSessionStore(client, keys=keys, **settings) for client in clients]  # type: ignore[arg-type]


async def test_created_on_one_instance_found_on_another(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 2) as (a, b):
        assert await a.create(record("s1"))
        found = await b.get("s1", None)
        assert found == record("s1")
        ready = SessionRecord("s1", None, "2025-11-25", log_level="debug", ready=True)
        assert await b.update(ready)
        assert await a.get("s1", None) == ready
        assert await a.get("nope", None) is None
        assert not await a.update(SessionRecord("nope", None, "2025-11-25"))


async def test_an_id_is_never_overwritten(redis_server: RedisServer, keys: Keys) -> None:
    async with instances(redis_server, keys, 2) as (a, b):
        assert await a.create(record("s1", "alice"))
        assert not await b.create(record("s1", "mallory"))
        assert await a.get("s1", "alice") == record("s1", "alice")
        assert await a.count() == 1


async def test_delete_on_one_instance_is_unknown_everywhere_at_once(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 3) as (a, b, c):
        await a.create(record("s1"))
        assert await c.get("s1", None) is not None
        assert await b.delete("s1")
        assert await a.get("s1", None) is None
        assert await c.get("s1", None) is None
        assert not await c.delete("s1")
        assert await a.count() == 0


async def test_a_session_stays_bound_to_its_principal_on_every_instance(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 2) as (a, b):
        await a.create(record("s1", "alice"))
        assert await b.get("s1", "mallory") is None
        assert await b.get("s1", None) is None
        assert await b.get("s1", "alice") == record("s1", "alice")
        await a.create(record("s2"))
        assert await b.get("s2", "alice") is None  # an unauthenticated session is nobody's


async def test_idle_expiry_holds_across_instances_and_use_postpones_it(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 2, idle_timeout=0.3) as (a, b):
        await a.create(record("used"))
        await a.create(record("idle"))
        await a.create(record("busy"))
        idle = keys.session("idle")
        with trio.fail_after(5):
            while await a._client.redis.exists([idle]):  # a raw look: get() would refresh it
                # b uses one session; a holds another busy (a call running)
                assert await b.get("used", None) is not None
                await a.touch(["busy"])
                await trio.sleep(0.05)
        # "idle" was untouched for 0.3 s; its ghost in the cap's set is gone too
        assert await a.get("used", None) is not None
        assert await b.get("busy", None) is not None
        assert await b.count() == 2


async def test_the_cap_is_cluster_wide_with_retry_after(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 3, idle_timeout=2.5, max_sessions=3) as stores:
        for index, store in enumerate(stores):
            assert await store.create(record(f"s{index}"))
        for store in stores:
            with pytest.raises(SessionCapReached) as info:
                await store.create(record("one-too-many"))
            assert info.value.http_status == 503
            assert 1 <= info.value.retry_after <= 3
        await stores[1].delete("s0")
        assert await stores[2].create(record("s3"))  # the freed place is usable anywhere
        assert await stores[0].count() == 3


async def test_an_expired_session_frees_its_place_in_the_cap(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with instances(redis_server, keys, 2, idle_timeout=0.2, max_sessions=1) as (a, b):
        await a.create(record("s1"))
        with pytest.raises(SessionCapReached):
            await b.create(record("s2"))
        with trio.fail_after(5):
            while True:
                try:
                    assert await b.create(record("s2"))
                    break
                except SessionCapReached:
                    await trio.sleep(0.05)
        assert await a.get("s1", None) is None


async def test_sessions_while_redis_is_down_are_503_then_usable_again(
    own_redis: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with RedisClient.connect(own_redis.url) as client:
            store = RedisSessionStore(client, keys=keys)
            await store.create(record("s1"))
            own_redis.stop()
            for operation in (
                store.get("s1", None),
                store.create(record("s2")),
                store.delete("s1"),
                store.touch(["s1"]),
            ):
                start = trio.current_time()
                with pytest.raises(StoreUnavailable):
                    await operation
                assert trio.current_time() - start < 2
            own_redis.start()  # empty (no persistence): the session is gone, as after any loss
            await client.wait_up()
            assert await store.get("s1", None) is None
            assert await store.create(record("s2"))  # scripts are loaded again by themselves
            assert await store.get("s2", None) == record("s2")


def test_settings_are_checked() -> None:
    client = RedisClient("redis://h")
    with pytest.raises(ValueError, match="idle_timeout"):
        RedisSessionStore(client, idle_timeout=0)
    with pytest.raises(ValueError, match="max_sessions"):
        RedisSessionStore(client, max_sessions=True)
