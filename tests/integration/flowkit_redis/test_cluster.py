"""The stores on a real 3-master Redis Cluster (coredis's cluster client).

The cluster is started by the suite itself (three redis-server processes in
cluster mode, slots assigned by ``redis-cli --cluster create``). Two clients
stand for two instances. Sessions are spread over all three masters, which
the first test checks, so the scripts' keys really live on different nodes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import pytest
import trio
from coredis._utils import hash_slot

from flowkit.mcp._shared import SessionRecord
from flowkit_redis import (
    Keys,
    RedisClient,
    RedisEventStore,
    RedisSessionStore,
    SessionCapReached,
    StoreUnavailable,
    Wakeups,
)

from ._server import RedisClusterServers
from .test_events import collect, event, events_of, follow

SESSIONS = [f"session-{index}" for index in range(12)]


@asynccontextmanager
async def two_instances(
    cluster: RedisClusterServers,
) -> AsyncIterator[tuple[RedisClient, RedisClient, trio.Nursery]]:
    async with (
        RedisClient.connect(cluster.url, cluster=True) as a,
        RedisClient.connect(cluster.url, cluster=True) as b,
        trio.open_nursery() as nursery,
    ):
        yield a, b, nursery
        nursery.cancel_scope.cancel()


async def test_sessions_land_on_every_master(
    redis_cluster: RedisClusterServers, keys: Keys
) -> None:
    async with two_instances(redis_cluster) as (a, _, _):
        assert isinstance(a.redis, coredis.RedisCluster)
        layout = a.redis.connection_pool.cluster_layout
        masters = {
            layout.node_for_slot(hash_slot(keys.session(sid).encode())).name for sid in SESSIONS
        }
        assert masters == {f"127.0.0.1:{node.port}" for node in redis_cluster.nodes}


async def test_events_written_on_one_instance_replay_and_tail_on_the_other(
    redis_cluster: RedisClusterServers, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with two_instances(redis_cluster) as (a, b, nursery):
            wake_b = Wakeups(b)
            await nursery.start(wake_b.run)
            writer = RedisEventStore(a, Wakeups(a), keys=keys)
            reader = RedisEventStore(b, wake_b, keys=keys, replay_chunk=4)
            for sid in SESSIONS:
                await writer.append(sid, "1", 0, events_of(range(0, 10)))
                replay = await reader.replay(sid, "1", 3)
                assert replay is not None
                assert await collect(replay) == b"".join(events_of(range(4, 10)))
            chunks = await follow(reader, SESSIONS[0], "1", 8, nursery)
            assert await chunks.receive() == event(9)  # read after subscribing
            for seq in range(10, 15):
                await writer.append(SESSIONS[0], "1", seq, [event(seq)], final=seq == 14)
                assert await chunks.receive() == event(seq)
            assert wake_b.delivered >= 4  # pub/sub reached b (the last may come after b stopped)
            await writer.forget_session(SESSIONS[1])
            assert await reader.replay(SESSIONS[1], "1", -1) is None


async def test_sessions_and_the_cap_across_instances_on_a_cluster(
    redis_cluster: RedisClusterServers, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with two_instances(redis_cluster) as (a, b, _):
            on_a = RedisSessionStore(a, keys=keys, max_sessions=len(SESSIONS))
            on_b = RedisSessionStore(b, keys=keys, max_sessions=len(SESSIONS))
            for sid in SESSIONS:
                await on_a.save(SessionRecord(sid, "alice", "2025-11-25", "ready", "info"))
                await on_a.call_started(sid, 1, "a.1")
            with pytest.raises(SessionCapReached):
                await on_b.save(SessionRecord("one-more", None, "2025-11-25", "ready", "info"))
            for sid in SESSIONS:
                found = await on_b.load(sid)
                assert found is not None
                assert (found.principal, found.running) == ("alice", frozenset({1}))
            await on_b.touch(SESSIONS)
            assert await on_b.close(SESSIONS[0])
            assert await on_a.load(SESSIONS[0]) is None
            assert await on_a.count() == len(SESSIONS) - 1


def test_a_cluster_has_only_database_zero() -> None:
    with pytest.raises(ValueError, match="only database 0"):
        RedisClient("redis://127.0.0.1:7000/1", cluster=True)


async def test_a_master_killed_and_restarted_fails_fast_then_serves_again(
    redis_binary: str, tmp_path: Path, keys: Keys
) -> None:
    """One master of three dies: its sessions' operations fail within the deadline (503),
    never hang; once it is back (empty: no persistence), everything works again with
    no restart of the client."""
    cluster = RedisClusterServers(redis_binary, tmp_path)
    try:
        cluster.start()
        with trio.fail_after(60):
            async with two_instances(cluster) as (a, b, _):
                on_a = RedisSessionStore(a, keys=keys)
                on_b = RedisSessionStore(b, keys=keys)
                for sid in SESSIONS:
                    await on_a.save(SessionRecord(sid, None, "2025-11-25", "ready", "info"))
                layout = a.redis.connection_pool.cluster_layout
                victim = layout.node_for_slot(hash_slot(keys.session(SESSIONS[0]).encode()))
                (node,) = [n for n in cluster.nodes if n.port == victim.port]
                node.stop()  # SIGKILL
                start = trio.current_time()
                with pytest.raises(StoreUnavailable) as failed:
                    await on_b.load(SESSIONS[0])
                assert trio.current_time() - start < 2
                assert failed.value.http_status == 503
                for sid in SESSIONS:  # every session, on any master: an answer or a fast 503
                    start = trio.current_time()
                    with contextlib.suppress(StoreUnavailable):
                        await on_a.load(sid)
                    assert trio.current_time() - start < 2
                await trio.sleep(0.5)  # the client's probes run meanwhile; none may crash it
                node.start()  # same port, its nodes.conf: it takes its slots back, empty
                while True:  # back within seconds (fail_after bounds it)
                    try:
                        assert await on_b.load(SESSIONS[0]) is None  # its data went with it
                        await on_b.save(SessionRecord("again", None, "2025-11-25", "ready", "info"))
                        break
                    except StoreUnavailable:
                        await trio.sleep(0.1)
                assert await on_a.load("again") is not None
                survivors = [sid for sid in SESSIONS if not _on(layout, keys, sid, victim)]
                assert survivors  # the other masters kept theirs
                for sid in survivors:
                    assert await on_a.load(sid) is not None
    finally:
        cluster.stop()


def _on(layout: Any, keys: Keys, sid: str, node: Any) -> bool:
    return bool(layout.node_for_slot(hash_slot(keys.session(sid).encode())).port == node.port)
