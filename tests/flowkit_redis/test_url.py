"""RedisURL: every URL form the issue names parses; the password never shows."""

from __future__ import annotations

import logging

import pytest

from flowkit_redis import RedisClient, RedisURL


def test_plain_tls_and_credentials() -> None:
    assert RedisURL.parse("redis://cache:6380/2") == RedisURL("cache", 6380, 2)
    assert RedisURL.parse("redis://127.0.0.1") == RedisURL("127.0.0.1", 6379, 0)
    tls = RedisURL.parse("rediss://alice:s%40cret@cache.example/1")
    assert (tls.tls, tls.username, tls.password, tls.db) == (True, "alice", "s@cret", 1)
    only_password = RedisURL.parse("redis://:hunter2@h")
    assert (only_password.username, only_password.password) == (None, "hunter2")


def test_password_is_never_in_repr_str_or_redacted() -> None:
    url = RedisURL.parse("rediss://alice:hunter2@h:1/0")
    for text in (repr(url), str(url), url.redacted(), repr(RedisClient(url))):
        assert "hunter2" not in text
        assert "alice:***@h:1" in text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "redis:// or rediss://"),
        ("redis://", "names no host"),
        ("redis://h/zero", "database number"),
        ("redis://h:notaport", "not a Redis URL"),
        ("http://u:hunter2@h", "redis:// or rediss://"),
    ],
)
def test_bad_urls_are_one_line_errors_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        RedisURL.parse(url)
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


async def test_the_outage_log_line_has_no_password(caplog: pytest.LogCaptureFixture) -> None:
    from flowkit_redis import StoreUnavailable

    from ..integration.flowkit_redis._server import free_port

    url = f"redis://default:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens
    with caplog.at_level(logging.DEBUG):
        async with RedisClient.connect(url, timeout=0.5) as client:
            with pytest.raises(StoreUnavailable):
                await client.run(lambda redis: redis.ping())
    assert caplog.records, "the outage is logged"
    assert all("hunter2" not in record.getMessage() for record in caplog.records)
    assert any("default:***@127.0.0.1" in record.getMessage() for record in caplog.records)
