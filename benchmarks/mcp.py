"""One stream's notifications/s: flowkit vs the official MCP SDK server and FastMCP, in one run.

Every server runs as a subprocess on 127.0.0.1 (``flowkit serve --demo``,
``benchmarks._official``, the SDK's ``MCPServer`` on uvicorn, and
``benchmarks._fastmcp``, FastMCP 4.x in its own venv). The same raw
client (``benchmarks._client``) calls ``ticker(count=50000)`` with a
progressToken on a fresh session, alternating servers, ``--repeat`` times;
the table shows medians::

    python -m benchmarks.mcp [--count N] [--repeat K] [--quick]

* notifications/s: ``count`` / (final response received - request sent);
* time to first notification: median over ``--small`` warm ``ticker(count=1)``
  calls (request sent → progress received);
* idle RSS: the server's RSS after start-up and one handshake;
* client CPU: the load client's CPU seconds per wall second during the big
  calls (near 1.0 would mean the client is the bottleneck).

The last line is ``ratio=<flowkit/official> flowkit=<notif/s> official=<notif/s>
fastmcp=<notif/s>``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import trio

from . import _servers
from ._client import cpu_seconds, open_session
from ._util import median, table


@dataclass
class Stats:
    rates: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    idle_rss_kib: int = 0
    peak_rss_kib: int = 0


async def one_run(port: int, count: int, small: int, stats: Stats) -> None:
    s = await open_session(_servers.HOST, port, _servers.PATH)
    try:
        for _ in range(small):
            r = await s.call_tool("ticker", {"count": 1})
            if r.first_latency is None or not r.ok:
                raise RuntimeError(f"ticker(count=1) failed: {r.response}")
            stats.first_ms.append(r.first_latency * 1000)
        c0 = cpu_seconds()
        r = await s.call_tool("ticker", {"count": count})
        cpu = cpu_seconds() - c0
    finally:
        await s.aclose()
    if not r.ok or len(r.progress) != count or r.progress[-1] != count:
        raise RuntimeError(
            f"ticker({count}) delivered {len(r.progress)} progress, response {r.response}"
        )
    wall = r.t_done - r.t_sent
    stats.rates.append(count / wall)
    stats.client_cpu.append(cpu / wall)


def run(names: list[str], count: int, repeat: int, small: int) -> dict[str, Stats]:
    servers = {name: _servers.start(name) for name in names}
    stats = {name: Stats() for name in names}
    try:
        for name, srv in servers.items():
            stats[name].idle_rss_kib = srv.started_rss_kib
        for _ in range(repeat):
            for name, srv in servers.items():
                trio.run(one_run, srv.port, count, small, stats[name])
        for name, srv in servers.items():
            stats[name].peak_rss_kib = srv.peak_rss_kib()
    finally:
        for srv in servers.values():
            srv.stop()
    return stats


def rows(stats: dict[str, Stats], count: int) -> list[list[Any]]:
    out = []
    for name, st in stats.items():
        out.append(
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
                median(st.client_cpu),
            ]
        )
    return out


HEADER = [
    "server",
    "ticker count",
    "runs",
    "median notif/s",
    "min",
    "max",
    "first notif ms (p50)",
    "idle RSS MiB",
    "peak RSS MiB",
    "client CPU (s/s)",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", type=int, default=20, help="ticker(count=1) calls per run")
    parser.add_argument("--quick", action="store_true", help="count=5000, 2 runs (CI)")
    parser.add_argument("--servers", default=_servers.DEFAULT_SERVERS)
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.repeat, args.small = 5000, 2, 5
    names = _servers.selected(args.servers)
    stats = run(names, args.count, args.repeat, args.small)
    print(table(HEADER, rows(stats, args.count)))
    by = {name: median(st.rates) for name, st in stats.items()}
    fk, off = by.get("flowkit", float("nan")), by.get("official", float("nan"))
    print(f"ratio={fk / off:.1f} {_servers.peer_figures(by)}")


if __name__ == "__main__":
    main()
