"""The consumer-group source and the stream sink against a real redis-server."""

from __future__ import annotations

from typing import Any

import trio

import flowkit
from flowkit_redis import Entry, Keys, RedisClient, open_group_source, stream_sink


async def feed(client: RedisClient, stream: str, n: int, start: int = 0) -> None:
    for first in range(start, start + n, 1000):

        async def add(redis: Any, first: int = first) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for i in range(first, min(first + 1000, start + n)):
                    pipe.xadd(stream, {"n": str(i)})

        await client.run(add)


async def outputs(client: RedisClient, stream: str) -> list[dict[bytes, bytes]]:
    entries = await client.run(lambda redis: redis.xrange(stream, "-", "+"))
    return [dict(entry.field_values) for entry in entries]


def tagged(entry: Entry) -> Entry:
    return Entry(entry.id, {b"n": entry.fields[b"n"], b"source": entry.id.encode()})


async def test_entries_go_through_and_are_acked_in_batches(client: RedisClient, keys: Keys) -> None:
    source_stream, out = f"{keys.prefix}:in", f"{keys.prefix}:out"
    await feed(client, source_stream, 2000)
    sink = stream_sink(client, out)
    async with (
        open_group_source(client, source_stream, "g", until_idle=0.3) as source,
        flowkit.open_pipeline(source, flowkit.map(tagged), sink) as pipeline,
    ):
        assert [x async for x in pipeline] == []
    got = await outputs(client, out)
    assert sorted(int(f[b"n"]) for f in got) == list(range(2000))
    pending = await client.run(lambda redis: redis.xpending(source_stream, "g"))
    assert pending.pending == 0
    stats = source.statistics()
    assert (stats.read, stats.acked, stats.pending) == (2000, 2000, 0)
    # Batched: a read per 256 entries, an ack per settle point, not per entry.
    assert stats.round_trips < 2000 / 20
    written = sink.sink_statistics()
    assert written.written == 2000
    assert written.round_trips < 2000 / 20


class Boom(Exception):
    pass


async def test_a_crash_acknowledges_only_what_the_sink_committed(
    client: RedisClient, keys: Keys
) -> None:
    source_stream, out = f"{keys.prefix}:in", f"{keys.prefix}:out"
    await feed(client, source_stream, 3000)

    def fail_late(entry: Entry) -> Entry:
        if entry.fields[b"n"] == b"2500":
            raise Boom
        return tagged(entry)

    sink = stream_sink(client, out, chunk=64)
    try:
        async with (
            open_group_source(client, source_stream, "g", count=100, max_unacked=500) as source,
            flowkit.open_pipeline(
                source, flowkit.map(fail_late), flowkit.buffer(300), sink
            ) as pipeline,
        ):
            [x async for x in pipeline]
    except Boom:
        pass
    else:  # pragma: no cover
        raise AssertionError("the pipeline did not fail")
    committed = {f[b"source"].decode() for f in await outputs(client, out)}
    every = await client.run(lambda redis: redis.xrange(source_stream, "-", "+"))
    pending = await client.run(lambda redis: redis.xpending(source_stream, "g", "-", "+", 10_000))
    pending_ids = {p.identifier.decode() for p in pending}
    read = [e.identifier.decode() for e in every][: source.statistics().read]
    acked = set(read) - pending_ids
    assert acked, "it acknowledged along the way"
    assert acked <= committed, "an entry was acknowledged before its output was written"
    assert pending_ids  # what was in flight stays pending, for redelivery


async def test_a_dead_consumers_entries_are_claimed(client: RedisClient, keys: Keys) -> None:
    source_stream, out = f"{keys.prefix}:in", f"{keys.prefix}:out"
    await feed(client, source_stream, 50)
    await client.run(lambda redis: redis.xgroup_create(source_stream, "g", "0"))
    # A consumer reads 30 entries and dies without acknowledging them.
    await client.run(lambda redis: redis.xreadgroup("g", "dead", {source_stream: ">"}, count=30))
    async with (
        open_group_source(
            client, source_stream, "g", claim_idle=0.2, claim_interval=0.05, until_idle=1.0
        ) as source,
        flowkit.open_pipeline(source, flowkit.map(tagged), stream_sink(client, out)) as p,
    ):
        assert [x async for x in p] == []
    assert sorted(int(f[b"n"]) for f in await outputs(client, out)) == list(range(50))
    stats = source.statistics()
    assert (stats.read, stats.claimed, stats.acked) == (20, 30, 50)
    pending = await client.run(lambda redis: redis.xpending(source_stream, "g"))
    assert pending.pending == 0


async def test_an_entry_delivered_too_often_goes_to_the_dead_letter_stream(
    client: RedisClient, keys: Keys
) -> None:
    source_stream, out = f"{keys.prefix}:in", f"{keys.prefix}:out"
    await feed(client, source_stream, 3)
    await client.run(lambda redis: redis.xgroup_create(source_stream, "g", "0"))
    read = await client.run(
        lambda redis: redis.xreadgroup("g", "dead", {source_stream: ">"}, count=1)
    )
    poison = next(iter(read.values()))[0].identifier
    await client.run(  # as if it had been delivered 5 times
        lambda redis: redis.xclaim(source_stream, "g", "dead", 0, [poison], retrycount=5)
    )
    async with (
        open_group_source(
            client, source_stream, "g", claim_idle=0.1, claim_interval=0.05, until_idle=0.6
        ) as source,
        flowkit.open_pipeline(source, stream_sink(client, out)) as p,
    ):
        assert [x async for x in p] == []
    dead = await client.run(lambda redis: redis.xrange(f"{source_stream}:dead", "-", "+"))
    assert len(dead) == 1
    fields = dead[0].field_values
    assert fields[b"flowkit-source-id"] == poison
    assert b"5 deliveries" in fields[b"flowkit-error"]
    assert [f[b"n"] for f in await outputs(client, out)] == [b"1", b"2"]
    pending = await client.run(lambda redis: redis.xpending(source_stream, "g"))
    assert pending.pending == 0
    assert source.statistics().dead_lettered == 1


async def test_stale_consumers_are_deleted_and_names_are_unique(
    client: RedisClient, keys: Keys
) -> None:
    source_stream = f"{keys.prefix}:in"
    await client.run(lambda redis: redis.xgroup_create(source_stream, "g", "0", mkstream=True))
    await client.run(lambda redis: redis.xgroup_createconsumer(source_stream, "g", "ghost"))
    async with (
        open_group_source(client, source_stream, "g", stale_after=0, until_idle=0.2) as first,
        open_group_source(client, source_stream, "g", until_idle=0.2) as second,
    ):
        assert first.consumer != second.consumer
        async with flowkit.open_pipeline(first) as p:
            assert [x async for x in p] == []
    consumers = await client.run(lambda redis: redis.xinfo_consumers(source_stream, "g"))
    assert b"ghost" not in {c[b"name"] for c in consumers}
    assert first.statistics().consumers_deleted >= 1
    assert first.statistics().lag == 0


async def test_the_idempotent_sink_writes_each_key_once(client: RedisClient, keys: Keys) -> None:
    out = f"{keys.prefix}:out"
    items = [Entry(f"1-{i}", {b"n": str(i).encode()}) for i in range(300)]
    for _ in range(2):  # the second run is a redelivery of everything
        sink = stream_sink(client, out, idempotent=True, chunk=100)
        async with flowkit.open_pipeline(items, sink) as p:
            assert [x async for x in p] == []
    assert sorted(int(f[b"n"]) for f in await outputs(client, out)) == list(range(300))
    stats = sink.sink_statistics()
    assert (stats.written, stats.duplicates, stats.round_trips) == (0, 300, 3)


async def test_the_sink_trims_the_stream(client: RedisClient, keys: Keys) -> None:
    out = f"{keys.prefix}:out"
    items = [{"n": str(i)} for i in range(5000)]
    async with flowkit.open_pipeline(items, stream_sink(client, out, maxlen=1000)) as p:
        assert [x async for x in p] == []
    length = await client.run(lambda redis: redis.xlen(out))
    assert 1000 <= length < 5000


async def test_a_slow_redis_holds_the_pipeline_back(client: RedisClient, keys: Keys) -> None:
    out = f"{keys.prefix}:out"
    sink = stream_sink(client, out, chunk=10)
    produced = 0

    async def numbers() -> Any:
        nonlocal produced
        for i in range(10_000):
            produced += 1
            yield {"n": str(i)}

    async with flowkit.open_pipeline(numbers(), sink, hop_items=20) as p:
        with trio.move_on_after(0.2):
            [x async for x in p]
        written = sink.sink_statistics().written
    # Not read ahead of what Redis took: one hop and one chunk at most.
    assert produced - written <= 20 + 10 + 256


async def test_entries_held_longer_than_claim_idle_are_not_claimed_from_a_live_consumer(
    client: RedisClient, keys: Keys
) -> None:
    source_stream, out = f"{keys.prefix}:in", f"{keys.prefix}:out"
    await feed(client, source_stream, 20)
    release, holding = trio.Event(), trio.Event()

    async def hold_first(entry: Entry) -> Entry:
        if entry.fields[b"n"] == b"0":
            holding.set()
            await release.wait()  # a long window, a stalled sink: 3 claim_idles
        return tagged(entry)

    settings: dict[str, Any] = {"claim_idle": 1.0, "claim_interval": 0.1}
    others: list[Any] = []

    async def another_consumer() -> None:
        async with (
            open_group_source(client, source_stream, "g", until_idle=3.0, **settings) as other,
            flowkit.open_pipeline(other, stream_sink(client, out)) as pipeline,
        ):
            assert [x async for x in pipeline] == []  # 3 s of looking for entries to claim
        others.append(other)
        release.set()

    with trio.fail_after(30):
        async with (
            open_group_source(client, source_stream, "g", until_idle=4.0, **settings) as first,
            flowkit.open_pipeline(first, flowkit.map(hold_first), stream_sink(client, out)) as p,
            trio.open_nursery() as nursery,
        ):
            # The other consumer starts only once `first` holds all 20 entries:
            # started earlier, its XREADGROUP could take them before first's.
            async def start_when_held() -> None:
                await holding.wait()
                assert first.statistics().read == 20  # one read of up to 256
                nursery.start_soon(another_consumer)

            nursery.start_soon(start_when_held)
            assert [x async for x in p] == []
    assert others[0].statistics().claimed == 0
    assert first.statistics().acked == 20
    assert sorted(int(f[b"n"]) for f in await outputs(client, out)) == list(range(20))
