"""Window throughput: flowkit vs the naive trio design vs aiostream, in one run.

The job is a tumbling-window aggregation: a source of N integers, windows of
``--window`` seconds (processing time), each window reduced to its count and
sum, the sums checked against the source. It runs

* as a flowkit pipeline: ``buffer(256)``, ``tumbling_window`` then ``map``
  (chunked hops; the buffer lets the window stage take 256 items per trip);
* as the naive trio design: a task per stage, a memory channel between
  stages, one item per send, a timed receive per item in the window task;
* on aiostream over asyncio (the best non-trio Python anchor; it has no time
  windows, so they are written on its ``chunks`` the way a user would:
  chunks of ready items, each item stamped with its window on arrival);
* keyed, with ``--keys`` keys (10^4 by default): flowkit's keyed
  ``tumbling_window`` vs the naive design keeping a dict of lists.

Then the flowkit job's peak RSS for 10^5, 10^6 and 10^7 items, each in a
fresh child process, to show memory stays flat (open windows are bounded
in items). The last line is the flowkit-vs-naive ratio::

    python -m benchmarks.windows [--items N] [--naive-items N] [--repeat K] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

import flowkit

from ._util import median, table

#: Items held in open windows at most (flowkit's bound; the others hold a window's worth).
MAX_ITEMS = 100_000


def _aggregate(window: flowkit.Window[int]) -> tuple[int, int]:
    return len(window.items), sum(window.items)


async def run_flowkit(n: int, window: float, keys: int = 0) -> int:
    key: Callable[[int], int] | None = (lambda x: x % keys) if keys else None
    total = 0
    async with flowkit.open_pipeline(
        range(n),
        flowkit.buffer(256),  # chunks of 256 into the window (docs/ops/windows.md)
        flowkit.tumbling_window(window, key=key, max_items=MAX_ITEMS),
        flowkit.map(_aggregate),
    ) as out:
        async for _, window_sum in out:
            total += window_sum
    return total


async def run_naive(n: int, window: float, keys: int = 0) -> int:
    """Source task -> window task (timed receive per item) -> sink, one item per send."""
    total = 0

    async def source(send: trio.MemorySendChannel[int]) -> None:
        async with send:
            for i in range(n):
                await send.send(i)

    async def windows(
        receive: trio.MemoryReceiveChannel[int], send: trio.MemorySendChannel[tuple[int, int]]
    ) -> None:
        async with receive, send:
            start = trio.current_time()
            deadline = start + window
            held: dict[int, list[int]] = {}
            while True:
                with trio.move_on_at(deadline):
                    try:
                        item = await receive.receive()
                    except trio.EndOfChannel:
                        break
                    held.setdefault(item % keys if keys else 0, []).append(item)
                    continue
                for items in held.values():  # the window closed
                    await send.send((len(items), sum(items)))
                held = {}
                deadline = start + window * (math.floor((trio.current_time() - start) / window) + 1)
            for items in held.values():  # flush the partial window
                await send.send((len(items), sum(items)))

    async with trio.open_nursery() as nursery:
        s0, r0 = trio.open_memory_channel[int](0)
        s1, r1 = trio.open_memory_channel[tuple[int, int]](0)
        nursery.start_soon(source, s0)
        nursery.start_soon(windows, r0, s1)
        async with r1:
            async for _, window_sum in r1:
                total += window_sum
    return total


async def _aiostream_job(n: int, window: float) -> int:
    from aiostream import pipe, stream

    loop = asyncio.get_running_loop()
    start = loop.time()

    async def numbers() -> AsyncIterator[int]:
        for i in range(n):
            yield i
            if i % 256 == 255:
                await asyncio.sleep(0)

    total = 0
    current, held = 0, []  # the open window's index and items
    xs = stream.iterate(numbers()) | pipe.chunks(256)
    async with xs.stream() as chunks:
        async for chunk in chunks:
            index = int((loop.time() - start) // window)
            if index != current and held:
                total += sum(held)
                held = []
            current = index
            held.extend(chunk)
    return total + sum(held)


def run_aiostream(n: int, window: float) -> int:
    return asyncio.run(_aiostream_job(n, window))


def timed(fn: Any, n: int, *args: Any, trio_run: bool = True) -> float:
    started = time.perf_counter()
    total = trio.run(fn, n, *args) if trio_run else fn(n, *args)
    elapsed = time.perf_counter() - started
    if total != n * (n - 1) // 2:
        raise SystemExit(f"{fn.__name__}: wrong total {total}")
    return n / elapsed


def child_peak_rss(n: int, window: float) -> int:
    """Peak RSS in KiB of a fresh process running the flowkit job on n items."""
    code = (
        "import resource, trio; from benchmarks.windows import run_flowkit; "
        f"trio.run(run_flowkit, {n}, {window}); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def _have_aiostream() -> bool:
    try:
        import aiostream  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--naive-items", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=0.05, help="window size, seconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-sizes", default="100000,1000000,10000000")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    args = parser.parse_args()
    if args.quick:
        args.items, args.naive_items, args.repeat = 50_000, 10_000, 1
        args.keys, args.memory_sizes = 1_000, ""

    w = args.window
    naive_runs = max(1, args.repeat // 2)
    flow = [timed(run_flowkit, args.items, w) for _ in range(args.repeat)]
    naive = [timed(run_naive, args.naive_items, w) for _ in range(naive_runs)]
    keyed = [timed(run_flowkit, args.items, w, args.keys) for _ in range(args.repeat)]
    naive_keyed = [timed(run_naive, args.naive_items, w, args.keys) for _ in range(naive_runs)]
    rows = [
        ["flowkit tumbling_window", args.items, flow],
        ["naive trio (task per stage)", args.naive_items, naive],
        [f"flowkit keyed, {args.keys:,} keys", args.items, keyed],
        [f"naive trio keyed, {args.keys:,} keys", args.naive_items, naive_keyed],
    ]
    if _have_aiostream():
        runs = [timed(run_aiostream, args.items, w, trio_run=False) for _ in range(args.repeat)]
        rows.insert(2, ["aiostream chunks (asyncio)", args.items, runs])
    else:
        print("aiostream is not installed (pip install -e '.[bench]'): its row is skipped")
    print(
        table(
            ["design", "items per run", "runs", "median items/s", "min", "max"],
            [[name, n, len(r), median(r), min(r), max(r)] for name, n, r in rows],
        )
    )
    sizes = [int(s) for s in args.memory_sizes.split(",") if s]
    if sizes:
        print()
        memory = [[n, child_peak_rss(n, w)] for n in sizes]
        print(table(["items", "flowkit peak RSS (KiB)"], memory))
        print(
            f"rss_growth={memory[-1][1] / memory[0][1]:.3f} "
            f"(peak RSS at {sizes[-1]:,} / at {sizes[0]:,} items)"
        )
    ratio, keyed_ratio = median(flow) / median(naive), median(keyed) / median(naive_keyed)
    print(
        f"ratio={ratio:.1f} keyed_ratio={keyed_ratio:.1f} "
        f"flowkit_items_per_s={median(flow):.0f} naive_items_per_s={median(naive):.0f}"
    )


if __name__ == "__main__":
    main()
