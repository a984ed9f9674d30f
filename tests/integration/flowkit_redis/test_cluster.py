"""The stores on a real 3-master Redis Cluster (coredis's cluster client).

The cluster is started by the suite itself (three redis-server processes in
cluster mode, slots assigned by ``redis-cli --cluster create``). Two clients
stand for two instances. Sessions are spread over all three masters, which
the first test checks, so the scripts' keys really live on different nodes.
The followers' wake-ups travel by sharded pub/sub (``SPUBLISH`` from the
append script, ``SSUBSCRIBE`` on the channel's master), which the wake-up
tests check on the nodes themselves (``PUBSUB SHARDNUMSUB`` / ``NUMSUB``).
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


def one_session_per_master(client: RedisClient, keys: Keys) -> dict[int, str]:
    """A session id whose slot is on each master: port -> session id."""
    by_port: dict[int, str] = {}
    for sid in SESSIONS:
        by_port.setdefault(_port(client, keys.session(sid)), sid)
    assert len(by_port) == 3
    return by_port


def _port(client: RedisClient, key: str) -> int:
    """The port of the master serving ``key``'s slot (a key or a shard channel)."""
    assert isinstance(client.redis, coredis.RedisCluster)
    layout = client.redis.connection_pool.cluster_layout
    return int(layout.node_for_slot(hash_slot(key.encode())).port)


async def subscribers(cluster: RedisClusterServers, channel: str) -> dict[int, tuple[int, int]]:
    """Per node (port): the channel's (sharded, plain) subscribers, asked of that node alone."""
    counts = {}
    for node in cluster.nodes:
        async with coredis.Redis("127.0.0.1", node.port) as redis:
            sharded = await redis.pubsub_shardnumsub(channel)
            plain = await redis.pubsub_numsub(channel)
        counts[node.port] = (sharded[channel.encode()], plain[channel.encode()])
    return counts


async def until_subscribed(cluster: RedisClusterServers, channel: str, port: int | None) -> None:
    """Until the channel's one subscriber is a sharded one on ``port`` (``None``: none at all)."""
    want = {node.port: ((1, 0) if node.port == port else (0, 0)) for node in cluster.nodes}
    while await subscribers(cluster, channel) != want:  # noqa: ASYNC110 (polls Redis)
        await trio.sleep(0.02)


async def test_a_follower_on_b_wakes_by_sharded_pub_sub_on_its_streams_master(
    redis_cluster: RedisClusterServers, keys: Keys
) -> None:
    """Each stream's wake-up channel has one subscriber, sharded, on the stream's master
    (none plain anywhere), and the follower on B sees A's writes well within its 1 s poll."""
    with trio.fail_after(30):
        async with two_instances(redis_cluster) as (a, b, nursery):
            wake_b = Wakeups(b)
            assert wake_b.sharded  # a Cluster client: sharded by default
            await nursery.start(wake_b.run)
            writer = RedisEventStore(a, Wakeups(a), keys=keys)
            reader = RedisEventStore(b, wake_b, keys=keys, poll_interval=1.0)
            lags: list[float] = []
            for port, sid in one_session_per_master(a, keys).items():
                channel = keys.wake(sid, "a.1")
                assert _port(a, channel) == port  # the stream's tag: the stream's master
                await writer.append(sid, "a.1", 0, [event(0)])
                chunks = await follow(reader, sid, "a.1", -1, nursery)
                assert await chunks.receive() == event(0)
                await until_subscribed(redis_cluster, channel, port)
                delivered = wake_b.delivered
                for seq in range(1, 11):
                    start = trio.current_time()
                    await writer.append(sid, "a.1", seq, [event(seq)], final=seq == 10)
                    assert await chunks.receive() == event(seq)
                    lags.append(trio.current_time() - start)
                assert [chunk async for chunk in chunks] == []  # ended after the final write
                assert wake_b.delivered - delivered >= 9  # by pub/sub (the last may come late)
                await until_subscribed(redis_cluster, channel, None)  # the follower left
            assert max(lags) < 0.5, lags  # woken, not polled (1 s)


async def test_followers_on_a_cluster_get_every_event_once_in_order(
    redis_cluster: RedisClusterServers, keys: Keys
) -> None:
    """Three streams on three masters, written by A as fast as it can in writes of 1 to 7
    events (some split into several entries), followed on B: each follower gets its
    stream's events exactly once, in order, and ends at the final write."""
    total = 300
    with trio.fail_after(30):
        async with two_instances(redis_cluster) as (a, b, nursery):
            wake_b = Wakeups(b)
            await nursery.start(wake_b.run)
            writer = RedisEventStore(a, Wakeups(a), keys=keys, max_entry_bytes=120)
            reader = RedisEventStore(b, wake_b, keys=keys, replay_chunk=4)
            streams = {sid: [event(0)] for sid in one_session_per_master(a, keys)}
            received: dict[str, list[bytes]] = {sid: [] for sid in streams}
            for sid in streams:
                await writer.append(sid, "a.1", 0, [event(0)])

            async def drain(sid: str, chunks: trio.MemoryReceiveChannel[bytes]) -> None:
                async for chunk in chunks:
                    received[sid].append(chunk)

            async def write(sid: str) -> None:
                seq = 1
                while seq < total:
                    count = min(1 + seq % 7, total - seq)
                    batch = events_of(range(seq, seq + count))
                    await writer.append(sid, "a.1", seq, batch, final=seq + count == total)
                    streams[sid] += batch
                    seq += count

            async with trio.open_nursery() as inner:
                for sid in streams:
                    inner.start_soon(drain, sid, await follow(reader, sid, "a.1", -1, nursery))
                for sid in streams:
                    inner.start_soon(write, sid)
            for sid, written in streams.items():
                assert len(written) == total
                assert b"".join(received[sid]) == b"".join(written)
            assert wake_b.delivered > 0


async def test_the_poll_bounds_a_followers_latency_while_a_master_is_down(
    redis_binary: str, tmp_path: Path, keys: Keys
) -> None:
    """A master killed (not the stream's): B's sharded subscriber, which holds a connection
    to every master, is gone until it is back, so every wake-up is lost; the follower still
    gets every event once, in order, each within its poll interval. Once the master is
    back, the subscriber reconnects and wakes the follower again."""
    poll = 0.5
    cluster = RedisClusterServers(redis_binary, tmp_path)
    try:
        cluster.start()
        with trio.fail_after(60):
            async with two_instances(cluster) as (a, b, nursery):
                wake_b = Wakeups(b)
                await nursery.start(wake_b.run)
                writer = RedisEventStore(a, Wakeups(a), keys=keys)
                reader = RedisEventStore(b, wake_b, keys=keys, poll_interval=poll)
                sessions = one_session_per_master(a, keys)
                # The victim holds neither the stream nor the lease its follower checks.
                lease = _port(a, keys.lease("a"))
                port, sid = next((p, s) for p, s in sessions.items() if p != lease)
                (victim,) = [n for n in cluster.nodes if n.port not in (port, lease)]
                channel = keys.wake(sid, "a.1")
                await writer.append(sid, "a.1", 0, [event(0)])
                chunks = await follow(reader, sid, "a.1", -1, nursery)
                got = [await chunks.receive()]
                await until_subscribed(cluster, channel, port)
                seq = 1

                async def write_one(bound: float) -> float:
                    nonlocal seq
                    start = trio.current_time()
                    await writer.append(sid, "a.1", seq, [event(seq)])
                    got.append(await chunks.receive())
                    lag = trio.current_time() - start
                    assert lag < bound, (seq, lag)
                    seq += 1
                    return lag

                for _ in range(3):
                    await write_one(poll / 2)  # woken
                victim.stop()  # SIGKILL
                while wake_b._pubsub is not None:  # noqa: ASYNC110 -- it noticed (bounded)
                    await trio.sleep(0.01)
                delivered = wake_b.delivered
                for _ in range(5):
                    await write_one(poll + 0.3)  # polled
                assert wake_b.delivered == delivered  # no wake-up reached B meanwhile
                victim.start()  # same port, same nodes.conf: it takes its slots back
                await until_subscribed(cluster, channel, port)
                delivered = wake_b.delivered
                lags = [await write_one(poll + 0.3) for _ in range(5)]
                assert wake_b.delivered > delivered  # woken again
                assert min(lags) < poll / 2
                assert got == events_of(range(0, seq))  # every event once, in order
    finally:
        cluster.stop()


async def test_a_moved_slot_unsubscribes_and_the_subscriber_follows_it_to_its_new_master(
    redis_binary: str, tmp_path: Path, keys: Keys
) -> None:
    """``CLUSTER SETSLOT ... NODE`` moves a watched channel's (empty) slot: its old master
    unsubscribes the channel (an ``sunsubscribe`` the subscriber did not ask for), which
    re-reads the layout and subscribes on the new master, where a publish wakes it again."""
    cluster = RedisClusterServers(redis_binary, tmp_path)

    async def cli(port: int, *args: str) -> str:
        done = await trio.run_process([cluster.cli, "-p", str(port), *args], capture_stdout=True)
        return bytes(done.stdout).decode().strip()

    try:
        cluster.start()
        with trio.fail_after(30):
            async with two_instances(cluster) as (a, _, nursery):
                wakeups = Wakeups(a)
                await nursery.start(wakeups.run)
                channel = keys.wake("moving", "a.1")  # no key in its slot: free to move
                async with wakeups.watching(channel) as watch:
                    source = _port(a, channel)
                    await until_subscribed(cluster, channel, source)
                    target = next(n.port for n in cluster.nodes if n.port != source)
                    target_id = await cli(target, "cluster", "myid")
                    slot = str(hash_slot(channel.encode()))
                    for port in [target, source] + [n.port for n in cluster.nodes]:
                        assert (
                            await cli(port, "cluster", "setslot", slot, "node", target_id) == "OK"
                        )
                    await until_subscribed(cluster, channel, target)
                    assert wakeups.resubscribed == 1
                    watch.arm()
                    assert await cli(target, "spublish", channel, "") == "1"
                    await watch.wait()
    finally:
        cluster.stop()
