"""Operator throughput: flowkit vs the naive trio design, in one run.

The same five-stage job — source → map → filter → buffer(64) → map → sink —
runs once as a flowkit pipeline (fused stages, chunked item-bounded hops)
and once as the naive trio design (every stage a task, a memory channel
between stages, one item per send). Each side runs several times; the table
shows the medians and the last line is the ratio::

    python -m benchmarks.pipeline [--items N] [--naive-items N] [--repeat K]

The naive design is ~100x slower, so by default it moves fewer items (its
rate per item is what is compared). A second table shows the flowkit run's
peak RSS for 10^5, 10^6 and 10^7 items, each in a fresh child process, to
show memory stays flat with stream length (every bound is in items).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

import trio

import flowkit

from ._util import median, table


def _inc(x: int) -> int:
    return x + 1


def _odd(x: int) -> bool:
    return bool(x & 1)


def _double(x: int) -> int:
    return x * 2


async def run_flowkit(n: int) -> int:
    total = 0
    async with flowkit.open_pipeline(
        range(n), flowkit.map(_inc), flowkit.filter(_odd), flowkit.buffer(64), flowkit.map(_double)
    ) as out:
        async for item in out:
            total += item
    return total


async def run_naive(n: int) -> int:
    total = 0

    async def source(send: trio.MemorySendChannel[int]) -> None:
        async with send:
            for i in range(n):
                await send.send(i)

    async def stage(
        receive: trio.MemoryReceiveChannel[Any],
        send: trio.MemorySendChannel[Any],
        kind: str,
        fn: Any,
    ) -> None:
        async with receive, send:
            async for item in receive:
                if kind == "map":
                    await send.send(fn(item))
                elif fn(item):
                    await send.send(item)

    async with trio.open_nursery() as nursery:
        s0, r0 = trio.open_memory_channel[int](0)
        s1, r1 = trio.open_memory_channel[int](0)
        s2, r2 = trio.open_memory_channel[int](0)
        s3, r3 = trio.open_memory_channel[int](64)  # buffer(64)
        s4, r4 = trio.open_memory_channel[int](0)
        nursery.start_soon(source, s0)
        nursery.start_soon(stage, r0, s1, "map", _inc)
        nursery.start_soon(stage, r1, s2, "filter", _odd)
        nursery.start_soon(stage, r2, s3, "map", lambda x: x)  # the buffer's pass-through task
        nursery.start_soon(stage, r3, s4, "map", _double)
        async with r4:
            async for item in r4:
                total += item
    return total


def expected_total(n: int) -> int:
    return sum(_double(x) for x in map(_inc, range(n)) if _odd(x))


def timed(fn: Any, n: int) -> float:
    started = time.perf_counter()
    total = trio.run(fn, n)
    elapsed = time.perf_counter() - started
    if total != expected_total(n):
        raise SystemExit(f"{fn.__name__}: wrong result {total}")
    return n / elapsed


def child_peak_rss(n: int) -> int:
    """Peak RSS in KiB of a fresh process running the flowkit job on n items."""
    code = (
        "import resource, trio; from benchmarks.pipeline import run_flowkit; "
        f"trio.run(run_flowkit, {n}); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--naive-items", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memory-sizes", default="100000,1000000,10000000")
    args = parser.parse_args()

    flow_rates = [timed(run_flowkit, args.items) for _ in range(args.repeat)]
    naive_rates = [timed(run_naive, args.naive_items) for _ in range(max(1, args.repeat // 2))]
    flow, naive = median(flow_rates), median(naive_rates)
    print(
        table(
            ["design", "items per run", "runs", "median items/s", "min", "max"],
            [
                [
                    "flowkit (fused, chunked hops)",
                    args.items,
                    len(flow_rates),
                    flow,
                    min(flow_rates),
                    max(flow_rates),
                ],
                [
                    "naive trio (task per stage)",
                    args.naive_items,
                    len(naive_rates),
                    naive,
                    min(naive_rates),
                    max(naive_rates),
                ],
            ],
        )
    )
    sizes = [int(s) for s in args.memory_sizes.split(",") if s]
    if sizes:
        print()
        rows = [[n, child_peak_rss(n)] for n in sizes]
        print(table(["items", "flowkit peak RSS (KiB)"], rows))
        print(
            f"rss_growth={rows[-1][1] / rows[0][1]:.3f} (peak RSS at {sizes[-1]:,} / at {sizes[0]:,} items)"
        )
    print(f"ratio={flow / naive:.1f} flowkit_items_per_s={flow:.0f} naive_items_per_s={naive:.0f}")


if __name__ == "__main__":
    main()
