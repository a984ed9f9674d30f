"""Redis-backed flowkit: one stream vs in memory vs the official server, resume on another
instance, the store's own costs and Redis memory, in one run.

    python -m benchmarks.redis_store [--quick] [--url redis://HOST:PORT/DB]

Without ``--url`` it starts a redis-server of its own (Debian's package, on
127.0.0.1, a free port, persistence off; stopped by its PID). With ``--url``,
give it a Redis of its own: it writes under a fresh key prefix and deletes it
afterwards. What it measures, with the store's real code (flowkit_redis):

* append: sequential writes of 1 event and of 64 events (one write = one
  round trip, one ``XADD``), then 100 streams appending at once (coredis
  multiplexes them on its connections, so Redis sees them pipelined);
* replay: a 10,000-event stream read back after cursor -1, stored as 1-event
  and as 64-event writes;
* memory: ``MEMORY USAGE`` of one stream of 1,000 events (~100-byte events)
  per write size, and ``used_memory`` growth per idle session;
* resume on another instance (``benchmarks.redis_store_resume``): GET on B ->
  first event, and how late live ticks of A's call arrive through B;
* one stream end to end: ``flowkit serve --demo`` in memory, the same with
  ``FLOWKIT_REDIS_URL``, and the official SDK server (``benchmarks._official``),
  with the same raw client and ``ticker`` call as ``benchmarks.mcp`` (median
  notifications/s and time to first notification).

The last line is ``ratio=<redis-backed/official> redis=<notif/s>
memory=<notif/s> official=<notif/s>``.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator

import trio

from flowkit.mcp._shared import SessionRecord
from flowkit_redis import Keys, RedisClient, RedisEventStore, RedisSessionStore, Wakeups

from . import _servers
from ._util import median
from .mcp import Stats, one_run
from .redis_store_resume import resume_latency

EVENT = b'id: 1:%d\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":%d}}\n\n'


def event(seq: int) -> bytes:
    return EVENT % (seq, seq)


async def _append_rate(store: RedisEventStore, sid: str, writes: int, per_write: int) -> float:
    start = time.perf_counter()
    seq = 0
    for _ in range(writes):
        await store.append(sid, "1", seq, [event(s) for s in range(seq, seq + per_write)])
        seq += per_write
    return writes / (time.perf_counter() - start)


async def _concurrent_rate(store: RedisEventStore, streams: int, writes: int) -> float:
    async def one(stream: int) -> None:
        for seq in range(writes):
            await store.append("c", str(stream), seq, [event(seq)])

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for stream in range(streams):
            nursery.start_soon(one, stream)
    return streams * writes / (time.perf_counter() - start)


async def _replay_rate(store: RedisEventStore, sid: str, events: int, per_write: int) -> float:
    for first in range(0, events, per_write):
        await store.append(sid, "1", first, [event(s) for s in range(first, first + per_write)])
    start = time.perf_counter()
    replay = await store.replay(sid, "1", -1)
    assert replay is not None
    size = 0
    async for chunk in replay:
        size += sum(map(len, chunk))
    elapsed = time.perf_counter() - start
    assert size == sum(len(event(s)) for s in range(events))
    return events / elapsed


async def _memory(client: RedisClient, store: RedisEventStore, keys: Keys, per_write: int) -> int:
    sid = f"m{per_write}"
    for first in range(0, 1000, per_write):
        count = min(per_write, 1000 - first)
        await store.append(sid, "1", first, [event(s) for s in range(first, first + count)])
    usage = await client.redis.memory_usage(keys.stream(sid, "1"), samples=0)
    return int(usage or 0)


async def _session_memory(client: RedisClient, keys: Keys, sessions: int) -> float:
    store = RedisSessionStore(client, keys=keys, max_sessions=sessions + 1)
    before = (await client.redis.info("memory"))["used_memory"]
    for _ in range(sessions):
        await store.save(
            SessionRecord(
                uuid.uuid4().hex,
                None,
                "2025-11-25",
                "ready",
                "info",
                client_info={"name": "bench-client", "version": "1.0.0"},
                client_capabilities={},
            )
        )
    after = (await client.redis.info("memory"))["used_memory"]
    return (int(after) - int(before)) / sessions


async def run(url: str, quick: bool) -> None:
    keys = Keys(prefix=f"bench{uuid.uuid4().hex[:8]}")
    scale = 10 if quick else 1
    async with RedisClient.connect(url, timeout=5) as client:
        store = RedisEventStore(client, Wakeups(client), keys=keys, max_entries_per_stream=100_000)
        rows = [
            ("append, 1 event per write, sequential", "writes/s",
             await _append_rate(store, "a1", 5000 // scale, 1)),
            ("append, 64 events per write, sequential", "writes/s",
             await _append_rate(store, "a64", 2000 // scale, 64)),
            ("append, 1 event per write, 100 streams at once", "writes/s",
             await _concurrent_rate(store, 100, 200 // scale)),
            ("replay 10,000 events stored 1 per write", "events/s",
             await _replay_rate(store, "r1", 10_000 // scale, 1)),
            ("replay 10,000 events stored 64 per write", "events/s",
             await _replay_rate(store, "r64", 10_000 // scale // 64 * 64, 64)),
            ("Redis memory, 1,000 events written 1 per write", "bytes/event",
             await _memory(client, store, keys, 1) / 1000),
            ("Redis memory, 1,000 events written 64 per write", "bytes/event",
             await _memory(client, store, keys, 64) / 1000),
            ("Redis memory per idle session (hash + cap entry)", "bytes",
             await _session_memory(client, keys, 1000 // scale)),
        ]  # fmt: skip
        print(f"event size: {len(event(1000))} bytes; Redis at {client.url.redacted()}")
        print(f"| {'measure':<52} | {'value':>10} | unit |")
        print(f"|{'-' * 54}|{'-' * 12}|------|")
        for name, unit, value in rows:
            print(f"| {name:<52} | {value:>10,.0f} | {unit} |")
        cursor = 0
        while True:  # delete what we wrote
            cursor, found = await client.redis.scan(cursor, match=f"{keys.prefix}:*", count=1000)
            if found:
                await client.redis.delete(found)
            if not cursor:
                break


def one_stream(url: str, count: int, repeat: int) -> dict[str, float]:
    """One big ticker call: flowkit in memory, flowkit sharing through Redis, the official server."""
    print(f"\none stream, ticker(count={count}), median of {repeat}:")
    print("| server | notifications/s | first notification, ms |")
    print("|---|---|---|")
    runs = (
        ("flowkit serve --demo, in memory", "memory", "flowkit", {}),
        ("flowkit serve --demo, FLOWKIT_REDIS_URL", "redis", "flowkit", {"FLOWKIT_REDIS_URL": url}),
        ("official SDK server", "official", "official", {}),
    )
    stats = {key: Stats() for _, key, _, _ in runs}
    servers = {key: _servers.start(name, env=env) for _, key, name, env in runs}
    try:
        for _ in range(repeat):  # interleaved, so a load spike hits every server alike
            for key, server in servers.items():
                trio.run(one_run, server.port, count, 5, stats[key])
    finally:
        for server in servers.values():
            server.stop()
    rates = {}
    for label, key, _, _ in runs:
        rates[key] = median(stats[key].rates)
        print(f"| {label} | {rates[key]:,.0f} | {median(stats[key].first_ms):.2f} |")
    return rates


@contextlib.contextmanager
def own_redis(binary: str | None = None) -> Iterator[str]:
    """A redis-server of the benchmark's own: 127.0.0.1, a free port, no persistence."""
    binary = binary or shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server, or pass --url")
    port = _servers.free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [binary, "--bind", _servers.HOST, "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"redis://{_servers.HOST}:{port}/0"
            trio.run(_wait_for_redis, url)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_for_redis(url: str) -> None:
    with trio.fail_after(10):
        async with RedisClient.connect(url) as client:
            while True:
                try:
                    await client.redis.ping()
                    return
                except Exception:
                    await trio.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="a Redis of its own (default: start one)")
    parser.add_argument("--redis-server", help="the redis-server to start (default: on PATH)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(own_redis(args.redis_server))
        trio.run(run, url, args.quick)
        latency = resume_latency(url, 3 if args.quick else 20)
        print("\nresume on another instance (call on A, GET on B), median:")
        print("| measure | ms |")
        print("|---|---|")
        print(f"| GET on B -> first event | {latency['resume_ms']:.2f} |")
        print(
            f"| live tick lag through B (vs the ticker's schedule) | {latency['live_lag_ms']:.2f} |"
        )
        print(f"| live tick lag through B, p99 | {latency['live_lag_p99_ms']:.2f} |")
        rates = one_stream(url, 5000 if args.quick else 50_000, 1 if args.quick else 5)
    print(
        f"ratio={rates['redis'] / rates['official']:.1f} redis={rates['redis']:.0f} "
        f"memory={rates['memory']:.0f} official={rates['official']:.0f}"
    )


if __name__ == "__main__":
    main()
