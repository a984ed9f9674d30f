"""C concurrent sessions, each streaming 50 progress notifications 100 ms apart.

For each C (default 200, 500, 1000) and each server (flowkit, official, fastmcp, and
``floor``: bare hypercorn with canned replies, ``benchmarks._floor``), a fresh server
process; C sessions are opened (64 handshakes at a time, not
timed), then every session calls ``ticker(count=50, interval_ms=100)`` with
a progressToken, the calls' starts spread evenly over one interval (so the
load asked of the server is a steady ``10 x C`` notifications/s)::

    python -m benchmarks.concurrent [--sessions 200,500,1000] [--ramp-ms N] [--era REV] [--quick]

``--ramp-ms N`` spreads the call starts over N ms instead of one interval: with
the default, 500 calls start within 100 ms, more than even the floor can start
on one core, so the C=500 tail is that start burst (docs/benchmarks.md, "What
C=500 at 50 ms would take"); ``--ramp-ms 1000`` measures the timed streams
themselves at the same 5,000 notifications/s. ``--era 2026-07-28`` makes every
call a stateless one (no handshake: each session is a connection, and each
call its first request; flowkit and the floor, which ignores the headers).

Both tickers schedule item k at ``start + k x interval`` (drift-free), so
notification k is ideally received at ``sent + k x interval``. Columns: calls completed /
failed; aggregate notifications/s (all received / first request to last
response); first-notification delay (received - its ideal time) p50/p99;
lateness of every notification against its ideal time p50/p99; the server's
peak RSS; the client's CPU seconds per second.

Then, per server and C, its lateness p99 as a multiple of the floor's (what the
stack itself does on this machine): the floor run last before it at that C, so
``--servers floor,flowkit,floor,flowkit`` reads each pair on its own. The last
line: ``ratio=<flowkit/official aggregate notif/s at the largest C>
flowkit=<notif/s> official=<notif/s> fastmcp=<notif/s>``.
"""

from __future__ import annotations

import argparse
import gc
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio

from . import _servers
from ._client import (
    PROTOCOL_VERSION,
    STATELESS_VERSION,
    CallResult,
    ClientError,
    cpu_seconds,
    raise_nofile,
)
from ._load import close_all, open_sessions
from ._util import outcome_table, percentile


@dataclass
class Outcome:
    server: str
    sessions: int
    completed: int
    failed: int
    notif_per_s: float
    first_p50_ms: float
    first_p99_ms: float
    late_p50_ms: float
    late_p99_ms: float
    peak_rss_mib: float
    client_cpu: float


HEADER = [
    "server",
    "C",
    "completed",
    "failed",
    "notif/s",
    "first p50 ms",
    "first p99 ms",
    "late p50 ms",
    "late p99 ms",
    "peak RSS MiB",
    "client CPU s/s",
]


async def _scenario(
    port: int,
    c: int,
    count: int,
    interval_ms: int,
    era: str = PROTOCOL_VERSION,
    ramp_ms: int | None = None,
) -> tuple[list[Any], float]:
    sessions = await open_sessions(port, c, era=era)
    results: list[CallResult | None] = [None] * c
    interval = interval_ms / 1000
    ramp = (interval_ms if ramp_ms is None else ramp_ms) / 1000
    deadline = count * interval + ramp + 30

    async def call(i: int) -> None:
        s = sessions[i]
        if s is None:
            return
        await trio.sleep(ramp * i / c)
        try:
            results[i] = await s.call_tool("ticker", {"count": count, "interval_ms": interval_ms})
        except (OSError, ClientError):
            results[i] = None

    gc.collect()
    c0, t0 = cpu_seconds(), time.perf_counter()
    try:
        with trio.move_on_after(deadline):
            async with trio.open_nursery() as nursery:
                for i in range(c):
                    nursery.start_soon(call, i)
    finally:
        close_all(sessions)
    wall = time.perf_counter() - t0
    return results, (cpu_seconds() - c0) / wall


def run_one(
    name: str,
    c: int,
    count: int,
    interval_ms: int,
    extra: Sequence[str] = (),
    era: str = PROTOCOL_VERSION,
    ramp_ms: int | None = None,
) -> Outcome:
    """One server ``name`` (started with ``extra``, see ``_servers.start``) under C streams.

    ``era``: the protocol revision the calls speak (2026-07-28: no session).
    """
    room, env = _servers.flowkit_room(c) if name == "flowkit" else ([], {})
    with _servers.running(name, [*room, *extra], env=env) as srv:
        _servers.reset_peak(srv.pid)
        results, client_cpu = trio.run(_scenario, srv.port, c, count, interval_ms, era, ramp_ms)
        peak = srv.peak_rss_kib()
    interval = interval_ms / 1000
    done = [r for r in results if r is not None and r.ok and len(r.progress) == count]
    firsts: list[float] = []
    lates: list[float] = []
    received = 0
    start, end = math.inf, 0.0
    for r in results:
        if r is None:
            continue
        received += len(r.times)
        start = min(start, r.t_sent)
        end = max(end, r.t_done or (r.times[-1] if r.times else 0.0))
        for value, t in zip(r.progress, r.times, strict=True):
            lates.append((t - (r.t_sent + value * interval)) * 1000)
        if r.times:
            firsts.append((r.times[0] - r.t_sent - interval) * 1000)
    return Outcome(
        name,
        c,
        len(done),
        c - len(done),
        received / (end - start) if end > start else 0.0,
        percentile(firsts, 50),
        percentile(firsts, 99),
        percentile(lates, 50),
        percentile(lates, 99),
        peak / 1024,
        client_cpu,
    )


def paired_floor(outcomes: Sequence[Outcome], i: int) -> Outcome | None:
    """The floor run that ``outcomes[i]`` is read against: the last one before it at
    its C (``--servers floor,flowkit,floor,flowkit`` pairs each run with its own),
    else the first one after it."""
    c = outcomes[i].sessions
    floors = [(j, f) for j, f in enumerate(outcomes) if f.server == "floor" and f.sessions == c]
    before = [f for j, f in floors if j < i]
    return before[-1] if before else (floors[0][1] if floors else None)


def main(argv: list[str] | None = None) -> list[Outcome]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="200,500,1000")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--interval-ms", type=int, default=100)
    parser.add_argument("--servers", default=_servers.DEFAULT_SERVERS + ",floor")
    parser.add_argument(
        "--ramp-ms",
        type=int,
        default=None,
        help="spread the call starts over N ms (default: one interval)",
    )
    parser.add_argument(
        "--era",
        choices=(PROTOCOL_VERSION, STATELESS_VERSION),
        default=PROTOCOL_VERSION,
        help="the calls' protocol revision (default %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="C=50,100; 10 notifications (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.count = "50,100", 10
    sizes = [int(x) for x in args.sessions.split(",")]
    raise_nofile(2 * max(sizes) + 256)
    outcomes = [
        run_one(name, c, args.count, args.interval_ms, era=args.era, ramp_ms=args.ramp_ms)
        for c in sizes
        for name in _servers.selected(args.servers)
    ]
    print(outcome_table(HEADER, outcomes))
    for i, o in enumerate(outcomes):
        floor = paired_floor(outcomes, i)
        if floor is not None and o.server != "floor" and floor.late_p99_ms > 0:
            print(
                f"C={o.sessions} {o.server}: lateness p99 {o.late_p99_ms:.1f} ms = "
                f"{o.late_p99_ms / floor.late_p99_ms:.2f}x the floor's {floor.late_p99_ms:.1f} ms"
            )
    top = {o.server: o.notif_per_s for o in outcomes if o.sessions == sizes[-1]}
    fk, off = top.get("flowkit", math.nan), top.get("official", math.nan)
    print(f"ratio={fk / off:.2f} {_servers.peer_figures(top)} (aggregate notif/s at C={sizes[-1]})")
    return outcomes


if __name__ == "__main__":
    main()
