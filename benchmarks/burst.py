"""A burst of sessions: N clients connect at once, initialize, call a cheap tool once.

For each server, a fresh process; N (default 500) client tasks start together,
each on its own connection: ``initialize`` → ``notifications/initialized`` →
``tools/call ticker(count=1)`` (no progressToken: the cheapest call); once
every client is done (the end of the timed burst) each DELETEs its session
and closes, so repetitions never hit a session cap. Repeated ``--repeat`` times on the same server, medians shown::

    python -m benchmarks.burst [--sessions 500] [--repeat 3] [--quick]

Columns: sessions that completed / failed; requests/s (3 HTTP requests per
session / wall time of the whole burst); handshake latency (connect +
initialize + initialized) p50/p99; tools/call latency (request sent → final
response) p50/p99; server peak RSS; client CPU seconds per second.

The last line: ``ratio=<flowkit/official requests/s> flowkit=<req/s>
official=<req/s> fastmcp=<req/s>``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from dataclasses import dataclass

import trio

from . import _servers
from ._client import ClientError, Session, cpu_seconds, raise_nofile
from ._util import median, outcome_table, percentile


@dataclass
class Outcome:
    server: str
    sessions: int
    completed: int
    failed: int
    req_per_s: float
    init_p50_ms: float
    init_p99_ms: float
    call_p50_ms: float
    call_p99_ms: float
    peak_rss_mib: float
    client_cpu: float


HEADER = [
    "server",
    "N",
    "completed",
    "failed",
    "requests/s",
    "handshake p50 ms",
    "handshake p99 ms",
    "tools/call p50 ms",
    "tools/call p99 ms",
    "peak RSS MiB",
    "client CPU s/s",
]


async def _burst(port: int, n: int) -> tuple[list[float], list[float], int, float, float]:
    inits: list[float] = []
    calls: list[float] = []
    ends: list[float] = []
    failed = 0
    go = trio.Event()
    burst_over = trio.Event()
    cpu_end = [0.0]

    async def one() -> None:
        nonlocal failed
        await go.wait()
        s = Session(_servers.HOST, port, _servers.PATH)
        try:
            try:
                t0 = time.perf_counter()
                await s.initialize()
                inits.append((time.perf_counter() - t0) * 1000)
                r = await s.call_tool("ticker", {"count": 1}, progress=False)
                if not r.ok:
                    raise ClientError(f"tools/call: HTTP {r.status} {r.response}")
                calls.append((r.t_done - r.t_sent) * 1000)
            except (OSError, ClientError):
                failed += 1
            ends.append(time.perf_counter())
            if len(ends) == n:
                cpu_end[0] = cpu_seconds()
                burst_over.set()
            # End the session once the whole burst is over (outside the timed
            # window, so no DELETE competes with it), so repetitions never
            # reach the server's session cap (flowkit's default is 1,000).
            await burst_over.wait()
            if s.session_id is not None and s.sock is not None:
                with contextlib.suppress(OSError, ClientError):
                    await s.delete()
        finally:
            s.close()

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
        await trio.sleep(0.2)  # every task parked on `go`
        c0, t0 = cpu_seconds(), time.perf_counter()
        go.set()
    # The burst ends when its last call does (the DELETEs come after it).
    wall = max(ends, default=time.perf_counter()) - t0
    return inits, calls, failed, wall, (cpu_end[0] - c0) / wall


def run_one(name: str, n: int, repeat: int) -> Outcome:
    rates: list[float] = []
    cpus: list[float] = []
    inits: list[float] = []
    calls: list[float] = []
    failed = 0
    with _servers.running(name) as srv:
        _servers.reset_peak(srv.pid)
        for _ in range(repeat):
            i, c, f, wall, cpu = trio.run(_burst, srv.port, n)
            inits += i
            calls += c
            failed += f
            rates.append(3 * (n - f) / wall)
            cpus.append(cpu)
            time.sleep(0.5)
        peak = srv.peak_rss_kib()
    return Outcome(
        name,
        n,
        len(calls) // repeat,
        failed // repeat,
        median(rates),
        percentile(inits, 50),
        percentile(inits, 99),
        percentile(calls, 50),
        percentile(calls, 99),
        peak / 1024,
        median(cpus),
    )


def main(argv: list[str] | None = None) -> list[Outcome]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--servers", default=_servers.DEFAULT_SERVERS)
    parser.add_argument("--quick", action="store_true", help="N=100, 1 run (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.repeat = 100, 1
    raise_nofile(args.sessions + 256)
    outcomes = [
        run_one(name, args.sessions, args.repeat) for name in _servers.selected(args.servers)
    ]
    print(outcome_table(HEADER, outcomes))
    by = {o.server: o.req_per_s for o in outcomes}
    fk, off = by.get("flowkit", math.nan), by.get("official", math.nan)
    print(f"ratio={fk / off:.2f} {_servers.peer_figures(by)} (requests/s)")
    return outcomes


if __name__ == "__main__":
    main()
