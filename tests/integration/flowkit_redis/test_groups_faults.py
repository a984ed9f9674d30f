"""Consumer groups under faults: Redis killed mid-run, a worker SIGKILLed mid-run.

Real parts only: redis-server processes started by the tests (``_server``),
worker processes running ``_worker`` (source -> map -> idempotent sink).
Every input must be in the output exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import trio
import trio.testing

import flowkit
from flowkit_redis import Entry, Keys, RedisClient, open_group_source, stream_sink
from flowkit_redis._entries import _text

from ..._system import stop_process
from ._server import RedisServer
from .test_groups import feed

ROOT = Path(__file__).resolve().parents[3]


async def counts(client: RedisClient, stream: str) -> Counter[int]:
    found: Counter[int] = Counter()
    start = "-"
    while True:
        entries = await client.run(
            lambda redis, start=start: redis.xrange(stream, start, "+", count=10_000)
        )
        if not entries:
            return found
        found.update(int(entry.field_values[b"n"]) for entry in entries)
        start = "(" + entries[-1].identifier.decode()


async def wait_for_length(client: RedisClient, stream: str, length: int) -> None:
    """Until ``stream`` has ``length`` entries: blocking reads as they are appended.

    The test's time limit bounds it.
    """
    seen, last = 0, "0-0"
    while seen < length:
        reply = await client.run(
            lambda redis, last=last: redis.xread({stream: last}, count=10_000, block=200)
        )
        for entries in (reply or {}).values():
            seen += len(entries)
            last = entries[-1].identifier.decode()


def keyed(entry: Entry) -> Entry:
    return Entry(entry.id, {b"n": entry.fields[b"n"]})


async def test_redis_killed_mid_run_loses_nothing_and_duplicates_nothing(
    own_redis: RedisServer,
) -> None:
    # Redis keeps what it acknowledged (AOF, fsync always): the stated premise.
    own_redis.extra = ["--appendonly", "yes", "--appendfsync", "always"]
    await trio.to_thread.run_sync(own_redis.stop)
    await trio.to_thread.run_sync(own_redis.start)
    n = 20_000
    async with RedisClient.connect(own_redis.url, backoff_cap=0.2) as client:
        await feed(client, "in", n)
        sink = stream_sink(client, "out", idempotent=True, chunk=128)
        with trio.fail_after(60):
            async with (
                open_group_source(client, "in", "g", until_idle=1.0, max_unacked=1000) as source,
                flowkit.open_pipeline(source, flowkit.map(keyed), sink) as pipeline,
                trio.open_nursery() as nursery,
            ):

                async def break_redis() -> None:
                    await wait_for_length(client, "out", n // 4)
                    await trio.to_thread.run_sync(own_redis.stop)
                    await trio.to_thread.run_sync(own_redis.start)

                nursery.start_soon(break_redis)
                async for _ in pipeline:
                    pass
        assert client.outages >= 1
        await client.wait_up()
        found = await counts(client, "out")
        missing = sorted(set(range(n)) - set(found))
        assert not missing, f"inputs missing from the output: {missing[:10]}, {source.statistics()}"
        assert max(found.values()) == 1, "an input is in the output twice"
        pending = await client.run(lambda redis: redis.xpending("in", "g"))
        assert pending.pending == 0
        stats = source.statistics()
        assert stats.retries >= 1 or sink.sink_statistics().retries >= 1


async def test_three_workers_one_killed_midway_every_input_exactly_once(
    redis_server: RedisServer, keys: Keys
) -> None:
    n = 100_000
    source_stream, out, group = f"{keys.prefix}:in", f"{keys.prefix}:out", "workers"
    async with RedisClient.connect(redis_server.url) as client:
        await feed(client, source_stream, n)
        command = [
            sys.executable, "-m", "tests.integration.flowkit_redis._worker",
            redis_server.url, source_stream, out, group,
        ]  # fmt: skip
        workers: list[Any] = []
        with trio.fail_after(120):  # ~20 s alone; the machine is shared
            try:
                for _ in range(3):
                    workers.append(
                        await trio.lowlevel.open_process(command, cwd=ROOT, stdout=subprocess.PIPE)
                    )
                await wait_for_length(client, out, n // 3)
                # Kill it while it holds entries: killed between a read and
                # nothing pending, it leaves the others nothing to claim.
                while True:  # polling Redis: there is nothing local to wait on
                    if await _pending_of(client, source_stream, group, workers[0].pid):
                        break
                    await trio.sleep(0.005)
                workers[0].send_signal(signal.SIGKILL)
                left = await _pending_of(client, source_stream, group, workers[0].pid)
                codes = [await worker.wait() for worker in workers]
            except BaseException:
                for worker in workers:
                    await stop_process(worker, grace=0)
                raise
        assert codes[0] == -signal.SIGKILL
        assert codes[1:] == [0, 0]
        reports = []
        for worker in workers[1:]:
            assert worker.stdout is not None
            reports.append(orjson.loads(await worker.stdout.receive_some(65536)))
        for worker in workers:
            await stop_process(worker)  # reaped already: closes its pipe
        found = await counts(client, out)
        assert len(found) == n, f"{n - len(found)} inputs are missing"
        assert max(found.values()) == 1, "an input is in the output twice"
        if left:  # still its own after the kill (none claimed within claim_idle yet)
            assert sum(report["claimed"] for report in reports) > 0  # the dead one's entries
        pending = await client.run(lambda redis: redis.xpending(source_stream, group))
        assert pending.pending == 0


async def test_entries_whose_write_redis_never_answered_are_not_acknowledged(
    own_redis: RedisServer,
) -> None:
    # Redis freezes just as the sink sends its third chunk, which holds every
    # entry handed over (count = chunk = max_unacked): the hop is empty, the
    # source waits for room and looks for a settle point, and must see the
    # sink's unanswered chunk as held. The pipeline is left, Redis comes back,
    # and the source's exit acknowledges only what had settled.
    made = 0

    def fields(entry: Entry) -> dict[bytes, bytes]:
        nonlocal made
        made += 1
        if made == 21:  # the first item of the third chunk, just before its write
            own_redis.pause()
        return {b"n": entry.fields[b"n"]}

    async with RedisClient.connect(own_redis.url, timeout=0.5) as client:
        await feed(client, "in", 200)
        sink = stream_sink(client, "out", chunk=10, fields=fields)
        with trio.fail_after(30):
            async with open_group_source(
                client, "in", "g", count=10, max_unacked=10, block=0.05
            ) as source:
                async with flowkit.open_pipeline(source, sink):
                    await wait_for_length(client, "out", 20)
                    await trio.testing.wait_all_tasks_blocked(cushion=0.3)
                own_redis.resume()  # before the source's exit acknowledges what settled
        await client.wait_up()
        written = set(await counts(client, "out"))
        every = await client.run(lambda redis: redis.xrange("in", "-", "+"))
        pending = await client.run(lambda redis: redis.xpending("in", "g", "-", "+", 1000))
        pending_ids = {p.identifier for p in pending}
        read = every[: source.statistics().read]
        acked = {int(e.field_values[b"n"]) for e in read if e.identifier not in pending_ids}
        # Redis runs the frozen write once it resumes, but the sink never heard back:
        # those entries are not committed, so not acknowledged (delivered again).
        assert written >= set(range(20))
        assert acked == set(range(20)), "acknowledged a write never confirmed, or missed one"


async def _pending_of(client: RedisClient, stream: str, group: str, pid: int) -> int:
    """Entries the consumer of process ``pid`` holds unacknowledged (names carry the pid)."""
    summary = await client.run(lambda redis: redis.xpending(stream, group))
    consumers = summary.consumers or {}
    mark = f"-{pid}-"
    return sum(int(count) for name, count in consumers.items() if mark in _text(name))
