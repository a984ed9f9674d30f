"""RedisEventStore against a real redis-server.

What the issue asks of the event log: one entry per coalesced write (so one
XADD per write), exclusive replay after a cursor that may fall inside a write,
in chunks; MAXLEN ~ and a TTL on every key; hash-tagged keys; a stored write
is never stored twice (retries); a live tail that follows another
instance's appends through the pub/sub wake-up, and still by polling when the
wake-up is lost.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from flowkit_redis import (
    EventTooLarge,
    Keys,
    RedisClient,
    RedisEventStore,
    StoreUnavailable,
    Wakeups,
)
from flowkit_redis._batch import Batch

from ._server import RedisServer


def event(seq: int, stream: str = "1") -> bytes:
    """One SSE event as the core frames it (the store only files bytes)."""
    return b'id: %s:%d\ndata: {"n":%d}\n\n' % (stream.encode(), seq, seq)


def events_of(seqs: range, stream: str = "1") -> list[bytes]:
    return [event(seq, stream) for seq in seqs]


async def collect(chunks: Any) -> bytes:
    """Everything a replay yields, joined (its chunks are lists of stored writes)."""
    out: list[bytes] = []
    async for chunk in chunks:
        assert isinstance(chunk, list)
        assert 1 <= len(chunk) <= 4  # replay_chunk entries per read, never one joined log
        out += chunk
    return b"".join(out)


async def test_a_coalesced_write_is_one_entry(
    events: RedisEventStore, client: RedisClient, keys: Keys
) -> None:
    await events.append("s", "1", 0, events_of(range(0, 50)))
    await events.append("s", "1", 50, [event(50)])
    entries = await client.redis.xrange(keys.stream("s", "1"))
    assert [entry.identifier for entry in entries] == [b"49-1", b"50-1"]
    assert entries[0].field_values[b"d"] == b"".join(events_of(range(0, 50)))


@pytest.mark.parametrize("cursor", [-1, 0, 7, 9, 10, 11, 25, 29])
async def test_replay_is_exactly_the_events_after_the_cursor(
    events: RedisEventStore, cursor: int
) -> None:
    # Writes of 10, 1, 10, 9 events: cursors fall on, before and inside writes.
    for first, count in ((0, 10), (10, 1), (11, 10), (21, 9)):
        await events.append("s", "1", first, events_of(range(first, first + count)))
    replay = await events.replay("s", "1", cursor)
    assert replay is not None
    assert await collect(replay) == b"".join(events_of(range(cursor + 1, 30)))
    assert replay.last_seq == 29
    assert not replay.ended


async def test_replay_never_crosses_streams_or_sessions(events: RedisEventStore) -> None:
    await events.append("s", "1", 0, events_of(range(0, 3)))
    await events.append("s", "2", 0, events_of(range(0, 3), "2"))
    await events.append("other", "1", 0, [b"theirs"])
    replay = await events.replay("s", "2", 0)
    assert replay is not None
    assert await collect(replay) == b"".join(events_of(range(1, 3), "2"))
    assert await events.replay("s", "3", 0) is None
    assert await events.replay("nobody", "1", 0) is None


async def test_an_append_sent_twice_is_stored_once(
    events: RedisEventStore, client: RedisClient, keys: Keys
) -> None:
    batch = events_of(range(0, 5))
    await events.append("s", "1", 0, batch)
    await events.append("s", "1", 0, batch)  # a retry after a lost reply
    assert await client.redis.xlen(keys.stream("s", "1")) == 1
    replay = await events.replay("s", "1", -1)
    assert replay is not None
    assert await collect(replay) == b"".join(batch)


async def test_every_key_has_a_ttl_and_the_log_is_trimmed(
    client: RedisClient, wakeups: Wakeups, keys: Keys
) -> None:
    store = RedisEventStore(client, wakeups, keys=keys, ttl=30, max_entries_per_stream=100)
    for seq in range(1000):
        await store.append("s", "1", seq, [event(seq)])
    redis = client.redis
    for key in (keys.stream("s", "1"), keys.streams("s")):
        assert 0 < await redis.pttl(key) <= 30_000
    length = await redis.xlen(keys.stream("s", "1"))
    assert 100 <= length < 300  # MAXLEN ~: trimmed by whole radix-tree nodes


async def test_keys_of_one_session_share_a_cluster_slot(keys: Keys) -> None:
    from coredis._utils import hash_slot  # the client's own CRC16 slot function

    session_keys = [
        keys.session("abc"),
        keys.stream("abc", "1"),
        keys.stream("abc", "7"),
        keys.streams("abc"),
        keys.wake("abc", "1"),
    ]
    assert len({hash_slot(key.encode()) for key in session_keys}) == 1
    assert hash_slot(keys.stream("abd", "1").encode()) != hash_slot(
        keys.stream("abc", "1").encode()
    )


async def test_large_writes_are_split_and_a_too_large_event_is_refused(
    client: RedisClient, wakeups: Wakeups, keys: Keys
) -> None:
    store = RedisEventStore(client, wakeups, keys=keys, max_entry_bytes=100)
    batch = [b"x" * 40] * 5
    await store.append("s", "1", 0, batch)
    assert await client.redis.xlen(keys.stream("s", "1")) == 3  # 80 + 80 + 40 bytes
    replay = await store.replay("s", "1", 1)
    assert replay is not None
    assert await collect(replay) == b"x" * 120
    with pytest.raises(EventTooLarge, match="101 bytes exceeds max_entry_bytes=100"):
        await store.append("s", "1", 5, [b"y" * 101])


async def test_forget_session_deletes_its_streams_only(
    events: RedisEventStore, client: RedisClient, keys: Keys
) -> None:
    for stream in ("1", "2", "3"):
        await events.append("s", stream, 0, [event(0, stream)])
    await events.append("t", "1", 0, [event(0)])
    await events.forget_session("s")
    for stream in ("1", "2", "3"):
        assert await events.replay("s", stream, -1) is None
    assert not await client.redis.exists([keys.streams("s")])
    assert await events.replay("t", "1", -1) is not None


async def follow(
    store: RedisEventStore, session_id: str, stream_id: str, after: int, nursery: trio.Nursery
) -> trio.MemoryReceiveChannel[bytes]:
    """Follow a stream in the background, as the adapter does; each read's bytes on the channel."""
    send, receive = trio.open_memory_channel[bytes](100)

    async def read() -> None:
        async with send, store.follow(session_id, stream_id, after) as follower:
            while True:
                chunk = await follower.read()
                if chunk:
                    await send.send(b"".join(chunk))
                if follower.ended:
                    return
                if not chunk:
                    await follower.wait()

    nursery.start_soon(read)
    return receive


async def test_a_follower_follows_appends_made_elsewhere_until_the_final_write(
    redis_server: RedisServer, events: RedisEventStore, keys: Keys
) -> None:
    """The writer is another instance: its own client, its own subscriber."""
    await events.append("s", "1", 0, events_of(range(0, 3)))
    with trio.fail_after(10):
        async with RedisClient.connect(redis_server.url) as other, trio.open_nursery() as nursery:
            writer = RedisEventStore(other, Wakeups(other), keys=keys)
            chunks = await follow(events, "s", "1", 0, nursery)
            assert await chunks.receive() == b"".join(events_of(range(1, 3)))
            for seq in range(3, 10):  # each write only once the last was seen
                await writer.append("s", "1", seq, [event(seq)], final=seq == 9)
                assert await chunks.receive() == event(seq)
            assert [chunk async for chunk in chunks] == []  # ended after the final write
    assert events._wakeups.delivered >= 6  # by pub/sub, not the 1 s poll (the last may come late)


async def test_a_follower_without_wakeups_still_sees_every_event_by_polling(
    client: RedisClient, keys: Keys
) -> None:
    """A subscriber that never runs loses every wake-up: the poll alone must suffice."""
    store = RedisEventStore(client, Wakeups(client), keys=keys, poll_interval=0.1)
    await store.append("s", "1", 0, [event(0)])
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            chunks = await follow(store, "s", "1", -1, nursery)
            assert await chunks.receive() == event(0)
            await store.append("s", "1", 1, [event(1)], final=True)
            assert await chunks.receive() == event(1)


async def test_a_stream_ended_without_a_final_write_ends_its_follower_and_replay(
    events: RedisEventStore,
) -> None:
    """A cancelled call has no final event: ``end()`` adds an empty flagged entry after it."""
    await events.append("s", "1", 0, events_of(range(0, 4)))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            chunks = await follow(events, "s", "1", 1, nursery)
            assert await chunks.receive() == b"".join(events_of(range(2, 4)))
            await events.end("s", "1")
            assert [chunk async for chunk in chunks] == []  # ended, nothing more
    await events.end("s", "1")  # twice: still one end
    replay = await events.replay("s", "1", -1)
    assert replay is not None
    assert await collect(replay) == b"".join(events_of(range(0, 4)))
    assert replay.ended
    assert replay.last_seq == 3
    await events.append("s", "1", 3, [event(3)])  # a late retry of the last write: ignored
    again = await events.replay("s", "1", 2)
    assert again is not None
    assert await collect(again) == event(3)
    assert again.ended


async def test_a_follower_ends_when_its_stream_is_forgotten(
    client: RedisClient, keys: Keys, wakeups: Wakeups
) -> None:
    """A session deleted elsewhere: the follower's next read finds no stream, and stops."""
    store = RedisEventStore(client, wakeups, keys=keys, poll_interval=0.05)
    await store.append("s", "1", 0, [event(0)])
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            chunks = await follow(store, "s", "1", 0, nursery)
            await store.forget_session("s")
            assert [chunk async for chunk in chunks] == []


async def test_append_while_redis_is_down_is_store_unavailable_and_recovers(
    own_redis: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with RedisClient.connect(own_redis.url) as client, trio.open_nursery() as nursery:
            wakeups = Wakeups(client)
            await nursery.start(wakeups.run)
            store = RedisEventStore(client, wakeups, keys=keys)
            await store.append("s", "1", 0, [event(0)])
            own_redis.stop()
            with pytest.raises(StoreUnavailable):
                await store.append("s", "1", 1, [event(1)])
            own_redis.start()  # empty: persistence is off
            await client.wait_up()
            await store.append("s", "1", 5, [event(5)])
            replay = await store.replay("s", "1", 0)
            assert replay is not None
            assert await collect(replay) == event(5)
            nursery.cancel_scope.cancel()


async def test_the_wakeup_subscriber_comes_back_after_a_redis_restart(
    own_redis: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with RedisClient.connect(own_redis.url) as client, trio.open_nursery() as nursery:
            wakeups = Wakeups(client)
            await nursery.start(wakeups.run)
            store = RedisEventStore(client, wakeups, keys=keys, poll_interval=60)
            async with wakeups.watching(keys.wake("s", "1")) as watch:
                own_redis.stop()
                with pytest.raises(StoreUnavailable):
                    await store.append("s", "1", 0, [event(0)])
                own_redis.start()
                await client.wait_up()
                # The subscriber re-subscribes by itself; keep writing until a
                # wake-up arrives (the poll is 60 s, so only pub/sub can end this).
                seq = 0
                while not wakeups.delivered:
                    watch.arm()
                    await store.append("s", "1", seq, [event(seq)])
                    seq += 1
                    with trio.move_on_after(0.05):
                        await watch.wait()
            nursery.cancel_scope.cancel()


async def test_a_batch_is_one_pipeline_and_reloads_its_scripts_after_a_flush(
    client: RedisClient, events: RedisEventStore
) -> None:
    """A restarted Redis has no scripts: the batch loads them and is sent again (idempotent)."""
    await client.redis.script_flush()
    batch = Batch(client)
    batch.add([events.append_call("s", "1", 0, events_of(range(0, 3))), events.end_call("s", "1")])
    await batch.send()
    assert batch.calls == []
    replay = await events.replay("s", "1", -1)
    assert replay is not None
    assert await collect(replay) == b"".join(events_of(range(0, 3)))
    assert replay.ended
