"""Adaptive write coalescing on vs off, across client read speeds (flowkit only).

Two flowkit servers (``benchmarks._flowkit_tools``): coalescing on (the
adapter's default: the writer drains every ready event into one write) and
off (``FLOWKIT_BENCH_COALESCE=0``: one write per event). One client calls
``stamped(count, rate)``, a lossless tool whose progress messages carry the
server's monotonic clock at emission, and reads at each speed::

    python -m benchmarks.batching [--count 20000] [--quick]

Speeds: ``fast`` (64 KiB reads, no pause), ``3 MB/s`` (16 KiB per 5 ms),
``0.8 MB/s`` (4 KiB per 5 ms). Workloads: ``max`` (the pipeline as fast as
it goes) and ``paced`` (``--rate`` items/s: a live feed, where per-event
latency matters). Columns: delivered events/s, per-event latency (client
receipt - server emission, same clock) p50/p99, and bytes per ``recv`` as a
proxy for write size.

The last line: ``ratio=<on/off delivered events/s, fast client, max>
on=<events/s> off=<events/s>``; the paced rows show whether a fast client
pays latency for batching.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import trio

from . import _servers
from ._client import CallResult, open_session
from ._util import outcome_table, percentile

SPEEDS: list[tuple[str, int, float]] = [
    ("fast", 65536, 0.0),
    ("3 MB/s", 16384, 0.005),
    ("0.8 MB/s", 4096, 0.005),
]


@dataclass
class Outcome:
    coalescing: str
    workload: str
    speed: str
    delivered_per_s: float
    lat_p50_ms: float
    lat_p99_ms: float
    bytes_per_read: float


HEADER = [
    "coalescing",
    "workload",
    "client reads",
    "delivered/s",
    "latency p50 ms",
    "latency p99 ms",
    "bytes per recv",
]


async def _one(
    port: int, count: int, rate: float, size: int, pause: float
) -> tuple[CallResult, int]:
    """One ``stamped`` call read at the given speed; its result and number of reads."""
    s = await open_session(_servers.HOST, port, _servers.PATH, rcvbuf=65536 if pause else None)
    reads = 0

    def counted(_: CallResult) -> None:
        nonlocal reads
        reads += 1

    try:
        r = await s.call_tool(
            "stamped",
            {"count": count, "rate": rate},
            read_size=size,
            read_interval=pause,
            on_read=counted,
            stamps=True,
        )
    finally:
        await s.aclose()
    if not r.ok or len(r.progress) != count:
        raise RuntimeError(f"stamped({count}) delivered {len(r.progress)}: {r.response}")
    return r, reads


def main(argv: list[str] | None = None) -> list[Outcome]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=5000.0, help="paced items/s")
    parser.add_argument("--quick", action="store_true", help="count=3000 (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.count = 3000
    outcomes: list[Outcome] = []
    for label, env in (("on", {}), ("off", {"FLOWKIT_BENCH_COALESCE": "0"})):
        with _servers.running("flowkit", _servers.FLOWKIT_TOOLS, env=env) as srv:
            for workload, rate in (("max", 0.0), ("paced", args.rate)):
                for speed, size, pause in SPEEDS:
                    count = args.count if rate == 0 else min(args.count, int(rate * 2))
                    r, reads = trio.run(_one, srv.port, count, rate, size, pause)
                    wall = r.t_done - r.t_sent
                    outcomes.append(
                        Outcome(
                            label,
                            workload if not rate else f"paced {rate:.0f}/s",
                            speed,
                            count / wall,
                            percentile(r.stamps, 50) * 1000,
                            percentile(r.stamps, 99) * 1000,
                            r.bytes_read / max(reads, 1),
                        )
                    )
    print(outcome_table(HEADER, outcomes))
    by = {(o.coalescing, o.workload, o.speed): o.delivered_per_s for o in outcomes}
    on, off = by.get(("on", "max", "fast"), math.nan), by.get(("off", "max", "fast"), math.nan)
    print(f"ratio={on / off:.2f} on={on:.0f} off={off:.0f} (delivered/s, fast client, max)")
    return outcomes


if __name__ == "__main__":
    main()
