"""RedisClient against a real redis-server: fail fast, come back by itself, never hang.

Each test owns its redis-server (``own_redis``) and kills, pauses or restarts
it. The bounds are the issue's: a request that needs Redis has its answer
(success or :class:`StoreUnavailable`) within 2 s; once Redis is back,
requests work again within seconds with no restart of the client.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from flowkit_redis import RedisClient, StoreUnavailable

from ._server import RedisServer


async def ping(client: RedisClient) -> Any:
    return await client.run(lambda redis: redis.ping())


async def timed_failure(client: RedisClient) -> float:
    start = trio.current_time()
    with pytest.raises(StoreUnavailable) as info:
        await ping(client)
    assert info.value.http_status == 503
    assert info.value.headers == [(b"retry-after", str(info.value.retry_after).encode())]
    assert info.value.retry_after >= 1
    return trio.current_time() - start


async def until_up(client: RedisClient) -> float:
    """Seconds until a request succeeds again (the caller's fail_after bounds it)."""
    start = trio.current_time()
    while True:
        try:
            await ping(client)
        except StoreUnavailable:
            await client.wait_up()
            continue
        return trio.current_time() - start


async def test_killed_redis_fails_fast_then_works_again_after_restart(
    own_redis: RedisServer,
) -> None:
    with trio.fail_after(20):
        async with RedisClient.connect(own_redis.url) as client:
            assert await ping(client) == b"PONG"
            own_redis.stop()
            assert await timed_failure(client) < 2
            assert not client.up
            # Known down: the next request does not even try to connect.
            assert await timed_failure(client) < 0.05
            own_redis.start()
            assert await until_up(client) < 5
            assert client.up
            assert client.outages == 1


async def test_paused_redis_answers_within_the_deadline(own_redis: RedisServer) -> None:
    """SIGSTOP: connections stay open but nothing answers (a slow or hung Redis)."""
    with trio.fail_after(20):
        async with RedisClient.connect(own_redis.url, timeout=1.0) as client:
            assert await ping(client) == b"PONG"
            own_redis.pause()
            try:
                assert await timed_failure(client) < 2
            finally:
                own_redis.resume()
            assert await until_up(client) < 5


async def test_redis_down_at_start_is_an_outage_not_a_crash(own_redis: RedisServer) -> None:
    own_redis.stop()
    with trio.fail_after(20):
        async with RedisClient.connect(own_redis.url) as client:
            assert await timed_failure(client) < 2
            own_redis.start()
            assert await until_up(client) < 5


async def test_password_in_the_url_authenticates(redis_binary: str, tmp_path: Any) -> None:
    server = RedisServer(redis_binary, tmp_path, password="hunter2")
    server.start()
    try:
        with trio.fail_after(10):
            async with RedisClient.connect(server.url) as client:
                assert await ping(client) == b"PONG"
            wrong = server.url.replace("hunter2", "wrong")
            async with RedisClient.connect(wrong) as client:
                assert await timed_failure(client) < 2
    finally:
        server.stop()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout"):
        RedisClient("redis://h", timeout=0)
    with pytest.raises(ValueError, match="backoff_cap"):
        RedisClient("redis://h", backoff_base=1, backoff_cap=0.5)
