"""Consumer groups end to end: flowkit's group source -> map -> stream sink vs the naive loop.

    python -m benchmarks.consumer_groups [--url redis://HOST:PORT/DB] [--quick]

Without ``--url`` it starts a redis-server of its own on a free 127.0.0.1
port (persistence off) and stops it by PID. Each row is one run on a fresh
input stream of ``--entries`` entries, fed before the workers start; every
worker is a process of its own, and the clock runs from the moment all
workers are ready until every input is in the output stream and the group
has nothing pending (so acknowledgements are included).

* naive: ``XREADGROUP COUNT 1``, process, ``XADD``, ``XACK``, one entry at a
  time (three round trips per entry);
* flowkit, at least once: ``open_group_source`` -> ``map`` -> ``stream_sink``
  (reads of 256, one pipelined write per chunk, one ``XACK`` per settle point);
* flowkit, idempotent: the same with ``stream_sink(idempotent=True)`` (one Lua
  call per chunk, dedup record per entry).

The last line is the ratio of flowkit at least once with one worker to naive.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import orjson
import trio

import flowkit
from flowkit_redis import Entry, RedisClient, open_group_source, stream_sink

from ._util import table
from .redis_store import own_redis


def work(entry: Entry) -> dict[bytes, bytes]:
    """The per-entry processing: a small transformation, as a real stage would do."""
    n = entry.fields[b"n"]
    return {b"n": n, b"square": str(int(n) ** 2).encode(), b"source": entry.id.encode()}


async def _naive(client: RedisClient, source: str, out: str, group: str) -> int:
    consumer = f"naive-{os.getpid()}"
    redis = client.redis
    trips = 0
    while True:
        reply = await redis.xreadgroup(group, consumer, {source: ">"}, count=1, block=300)
        trips += 1
        if not reply:
            return trips
        for entries in reply.values():
            for entry in entries:
                await redis.xadd(out, work(Entry(entry.identifier.decode(), entry.field_values)))
                await redis.xack(source, group, [entry.identifier])
                trips += 2


async def _flowkit(client: RedisClient, source: str, out: str, group: str, once: bool) -> int:
    sink = stream_sink(client, out, idempotent=once, key=lambda fields: fields[b"source"].decode())
    async with (
        open_group_source(client, source, group, until_idle=0.3) as groups,
        flowkit.open_pipeline(groups, flowkit.map(work), sink) as pipeline,
    ):
        async for _ in pipeline:
            pass
    return groups.statistics().round_trips + sink.sink_statistics().round_trips


async def worker(url: str, mode: str, source: str, out: str, group: str) -> None:
    """One worker process: ready, wait for the go line, run, report its round trips."""
    async with RedisClient.connect(url, timeout=5) as client:
        with contextlib.suppress(Exception):
            await client.redis.xgroup_create(source, group, "0", mkstream=True)
        print("ready", flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        if mode == "naive":
            trips = await _naive(client, source, out, group)
        else:
            trips = await _flowkit(client, source, out, group, once=mode == "idempotent")
    print(orjson.dumps({"round_trips": trips}).decode(), flush=True)


async def _feed(client: RedisClient, stream: str, n: int) -> None:
    for first in range(0, n, 5000):
        async with client.redis.pipeline(transaction=False) as pipe:
            for i in range(first, min(first + 5000, n)):
                pipe.xadd(stream, {"n": str(i)})


async def _complete(client: RedisClient, out: str, source: str, group: str, n: int) -> None:
    """Until ``out`` holds ``n`` entries and nothing is pending: blocking reads."""
    seen, last = 0, "0-0"
    while seen < n:
        reply = await client.redis.xread({out: last}, count=10_000, block=200)
        for entries in (reply or {}).values():
            seen += len(entries)
            last = entries[-1].identifier.decode()
    # The last acknowledgements are a round trip behind; Redis has no event
    # for "nothing pending", so ask until it says so.
    while (await client.redis.xpending(source, group)).pending:  # noqa: ASYNC110
        await trio.sleep(0.001)


def one_run(url: str, mode: str, workers: int, n: int) -> tuple[float, int]:
    """Entries/s and round trips of one run with ``workers`` processes."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    source, out, group = f"{prefix}:in", f"{prefix}:out", "g"

    async def prepare() -> None:
        async with RedisClient.connect(url, timeout=10) as client:
            await _feed(client, source, n)

    trio.run(prepare)
    command = [sys.executable, "-m", "benchmarks.consumer_groups", "--worker", mode, url,
               source, out, group]  # fmt: skip
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        start = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

        async def finish() -> None:
            async with RedisClient.connect(url, timeout=10) as client:
                await _complete(client, out, source, group, n)

        trio.run(finish)
        elapsed = time.perf_counter() - start
        trips = 0
        for proc in procs:
            output, _ = proc.communicate(timeout=60)
            trips += orjson.loads(output.strip().splitlines()[-1])["round_trips"]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    async def clean() -> None:
        async with RedisClient.connect(url, timeout=10) as client:
            await client.redis.delete([source, out])
            cursor = 0
            while True:
                cursor, found = await client.redis.scan(cursor, match=f"{{{out}}}:*", count=5000)
                if found:
                    await client.redis.delete(found)
                if not cursor:
                    break

    trio.run(clean)
    return n / elapsed, trips


def run(url: str, entries: int, naive_entries: int) -> None:
    rows: list[list[Any]] = []
    rates: dict[str, float] = {}
    for label, mode, workers, n in (
        ("naive: XREADGROUP COUNT 1, XADD, XACK per entry", "naive", 1, naive_entries),
        ("flowkit, at least once", "flowkit", 1, entries),
        ("flowkit, at least once", "flowkit", 2, entries),
        ("flowkit, idempotent (effectively once)", "idempotent", 1, entries),
        ("flowkit, idempotent (effectively once)", "idempotent", 2, entries),
    ):
        rate, trips = one_run(url, mode, workers, n)
        rates[f"{mode}/{workers}"] = rate
        rows.append([label, workers, n, round(rate), round(trips / n, 3)])
    print(table(["design", "workers", "entries", "entries/s", "round trips/entry"], rows))
    ratio = rates["flowkit/1"] / rates["naive/1"]
    idempotent = rates["idempotent/1"] / rates["naive/1"]
    print(
        f"ratio={ratio:.1f}x flowkit at least once, 1 worker, vs naive "
        f"(idempotent: {idempotent:.1f}x; 2 workers: {rates['flowkit/2'] / rates['naive/1']:.1f}x)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="a Redis of its own (default: start one)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for the test suite")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--naive-entries", type=int, default=10_000)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        mode, url, source, out, group = args.worker
        trio.run(worker, url, mode, source, out, group)
        return
    entries, naive = (5000, 1000) if args.quick else (args.entries, args.naive_entries)
    with own_redis() if args.url is None else contextlib.nullcontext(args.url) as url:
        run(url, entries, naive)


if __name__ == "__main__":
    main()
