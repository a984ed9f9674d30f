"""What ``/metrics`` costs: one stream's notifications/s with metrics on vs off, in one run.

Two ``flowkit serve --demo`` subprocesses on 127.0.0.1: one as it ships
(``/metrics`` and ``/dashboard`` on) and one with ``--no-metrics
--no-dashboard``. The same raw client as ``benchmarks.mcp`` calls
``ticker(count=N)`` with a progressToken, alternating servers, ``--repeat``
times; while the "on" server streams, a scraper GETs its ``/metrics`` every
``--scrape-interval`` seconds (0.1 s by default: 150x a usual Prometheus
interval, so the scrape cost shows). The table shows medians::

    python -m benchmarks.metrics_overhead [--count N] [--repeat K] [--quick]

The last line is ``ratio=<on/off> on=<notif/s> off=<notif/s> scrapes=<n>``;
issue 14 asks for a ratio of at least 0.95 (at most 5 % cost).
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import trio

from . import _servers
from ._util import median, table
from .mcp import Stats, one_run

OFF = ["--demo", "--no-metrics", "--no-dashboard"]


async def _scraping(port: int, count: int, small: int, stats: Stats, every: float) -> int:
    """``one_run`` while scraping ``/metrics``; returns the number of scrapes."""
    scrapes = 0

    async def scrape(client: httpx.AsyncClient) -> None:
        nonlocal scrapes
        while True:
            response = await client.get(f"http://{_servers.HOST}:{port}/metrics")
            if response.status_code != 200 or b"flowkit_ready 1.0" not in response.content:
                raise RuntimeError(f"/metrics answered {response.status_code}")
            scrapes += 1
            await trio.sleep(every)

    async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
        nursery.start_soon(scrape, client)
        await one_run(port, count, small, stats)
        nursery.cancel_scope.cancel()
    return scrapes


def run(count: int, repeat: int, small: int, every: float) -> tuple[dict[str, Stats], int]:
    servers = {"on": _servers.start("flowkit"), "off": _servers.start("flowkit", OFF)}
    stats = {name: Stats() for name in servers}
    scrapes = 0
    try:
        for name, srv in servers.items():
            stats[name].idle_rss_kib = srv.started_rss_kib
        for _ in range(repeat):
            scrapes += trio.run(_scraping, servers["on"].port, count, small, stats["on"], every)
            trio.run(one_run, servers["off"].port, count, small, stats["off"])
        for name, srv in servers.items():
            stats[name].peak_rss_kib = srv.peak_rss_kib()
    finally:
        for srv in servers.values():
            srv.stop()
    return stats, scrapes


HEADER = [
    "metrics",
    "ticker count",
    "runs",
    "median notif/s",
    "min",
    "max",
    "first notif ms (p50)",
    "idle RSS MiB",
    "peak RSS MiB",
]


def rows(stats: dict[str, Stats], count: int) -> list[list[Any]]:
    return [
        [
            name,
            count,
            len(st.rates),
            median(st.rates),
            min(st.rates),
            max(st.rates),
            median(st.first_ms),
            st.idle_rss_kib / 1024,
            st.peak_rss_kib / 1024,
        ]
        for name, st in stats.items()
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", type=int, default=20, help="ticker(count=1) calls per run")
    parser.add_argument("--scrape-interval", type=float, default=0.1, metavar="S")
    parser.add_argument("--quick", action="store_true", help="count=5000, 3 runs (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.repeat, args.small = 5000, 3, 5
    stats, scrapes = run(args.count, args.repeat, args.small, args.scrape_interval)
    print(table(HEADER, rows(stats, args.count)))
    on, off = median(stats["on"].rates), median(stats["off"].rates)
    print(f"ratio={on / off:.3f} on={on:.0f} off={off:.0f} scrapes={scrapes}")


if __name__ == "__main__":
    main()
