"""Server CPU per call, per timed event and per start: figures that hold on a loaded machine.

Wall-clock latencies on a shared machine move with whatever else runs; the CPU
time a server spends per unit of work moves much less (it is read from
``/proc/<pid>/stat``, user + system). For each server (flowkit, official,
fastmcp and ``floor``, bare hypercorn with canned replies:
``benchmarks._floor``), alternating, ``--repeat`` times, on a fresh process:

* **per call**: one session makes ``--calls`` warm ``ticker(count=1)`` calls
  with a progressToken, one after the other; server CPU / calls, and the
  median time to the first notification (request sent -> progress received);
* **per timed event**: C sessions (``--sessions``) each call
  ``ticker(count=k, interval_ms=100)``, starts spread over one interval (as
  ``benchmarks.concurrent``), once with k=10 and once with k=40, after a
  warm-up round; the difference in server CPU over the difference in
  notifications received is the marginal cost of one timed event (the
  handshakes and the call set-up cancel out);
* **per start in a burst**: ``--starts`` sessions (default 500) each start
  ``ticker(count=1, interval_ms=4000)`` within 100 ms, as the calls of
  ``benchmarks.concurrent``'s C=500 start (docs/benchmarks.md, "What C=500 at
  50 ms would take"), with their one tick not due until after the span
  counted: server CPU over the 2.5 s from the first start, less the same
  span idle just before, over the starts. Every response head must be in
  within the span::

    python -m benchmarks.cpu [--calls 300] [--sessions 200] [--starts 500] [--repeat 3] [--quick]

The last line: ``ratio=<official/flowkit CPU per timed event> flowkit=<us>
official=<us> fastmcp=<us>`` (higher is better for flowkit).
"""

from __future__ import annotations

import argparse
import contextlib
import math
from dataclasses import dataclass, field

import trio

from . import _servers
from ._client import CallResult, ClientError, open_session, raise_nofile
from ._load import close_all, open_sessions
from ._util import median, table
from .concurrent import _scenario


@dataclass
class Stats:
    call_us: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    event_us: list[float] = field(default_factory=list)
    start_us: list[float] = field(default_factory=list)


async def _calls(srv: _servers.Server, calls: int, stats: Stats) -> None:
    s = await open_session(_servers.HOST, srv.port, _servers.PATH)
    try:
        for _ in range(20):  # warm-up
            await s.call_tool("ticker", {"count": 1})
        firsts = []
        c0 = srv.cpu_seconds()
        for _ in range(calls):
            r = await s.call_tool("ticker", {"count": 1})
            if r.first_latency is None or not r.ok:
                raise RuntimeError(f"{srv.name}: ticker(count=1) failed: {r.response}")
            firsts.append(r.first_latency * 1000)
        stats.call_us.append((srv.cpu_seconds() - c0) / calls * 1e6)
        stats.first_ms.append(median(firsts))
    finally:
        await s.aclose()


def _per_event(srv: _servers.Server, c: int) -> float:
    trio.run(_scenario, srv.port, c, 2, 100)  # warm-up
    spent: dict[int, tuple[float, int]] = {}
    for k in (10, 40):
        c0 = srv.cpu_seconds()
        results, _ = trio.run(_scenario, srv.port, c, k, 100)
        spent[k] = (srv.cpu_seconds() - c0, sum(len(r.times) for r in results if r))
    events = spent[40][1] - spent[10][1]
    return (spent[40][0] - spent[10][0]) / events * 1e6 if events > 0 else math.nan


_START_RAMP = 0.1  # seconds over which the starts are sent


async def _starts(srv: _servers.Server, n: int) -> float:
    """Server CPU per call start, ``n`` starts within ``_START_RAMP`` (see the module doc).

    The span counted is 5 ms per start, 1 s at least (2.5 s for 500: even
    the official server's ~1.4 ms per start fits), and each call's one tick
    falls due 1.5 s after it.
    """
    span = max(1.0, 0.005 * n)
    tick_ms = round(1000 * span) + 1500
    opened_sessions = await open_sessions(srv.port, n)
    sessions = [s for s in opened_sessions if s is not None]
    if len(sessions) < n:
        close_all(opened_sessions)
        raise RuntimeError(f"{srv.name}: {n - len(sessions)} of {n} sessions did not open")
    heads = 0

    def opened(_: CallResult) -> None:
        nonlocal heads
        heads += 1

    async def start(i: int) -> None:
        await trio.sleep(_START_RAMP * i / n)
        with contextlib.suppress(OSError, ClientError):  # its head uncounted: the run fails
            await sessions[i].call_tool(
                "ticker", {"count": 1, "interval_ms": tick_ms}, on_open=opened
            )

    try:
        c0 = srv.cpu_seconds()
        await trio.sleep(span)
        idle = srv.cpu_seconds() - c0
        async with trio.open_nursery() as nursery:
            c0 = srv.cpu_seconds()
            for i in range(n):
                nursery.start_soon(start, i)
            await trio.sleep(span)
            spent = srv.cpu_seconds() - c0 - idle
            if heads < n:
                raise RuntimeError(f"{srv.name}: {heads} of {n} calls started in {span} s")
            nursery.cancel_scope.cancel()  # the ticks are not what is measured
    finally:
        close_all(opened_sessions)
    return spent / n * 1e6


def run(names: list[str], calls: int, c: int, repeat: int, starts: int) -> dict[str, Stats]:
    stats = {name: Stats() for name in names}
    for _ in range(repeat):
        for name in names:
            # Three rounds of C sessions each stay open on the server: room for them.
            room = max(4 * c, starts)
            extra, env = _servers.flowkit_room(room) if name == "flowkit" else ([], {})
            with _servers.running(name, extra, env=env) as srv:
                trio.run(_calls, srv, calls, stats[name])
                stats[name].event_us.append(_per_event(srv, c))
            with _servers.running(name, extra, env=env) as srv:  # fresh: no sessions left
                stats[name].start_us.append(trio.run(_starts, srv, starts))
    return stats


HEADER = [
    "server",
    "runs",
    "CPU us per call",
    "first notif ms (p50)",
    "C",
    "CPU us per timed event",
    "min",
    "max",
    "starts",
    "CPU us per start",
    "min",
    "max",
]


def main(argv: list[str] | None = None) -> dict[str, Stats]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--starts", type=int, default=500, help="calls started within 100 ms")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--servers", default=_servers.DEFAULT_SERVERS + ",floor")
    parser.add_argument(
        "--quick", action="store_true", help="50 calls, C=20, 50 starts, 1 run (CI)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.sessions, args.starts, args.repeat = 50, 20, 50, 1
    raise_nofile(max(4 * args.sessions, 2 * args.starts) + 256)
    names = _servers.selected(args.servers)
    stats = run(names, args.calls, args.sessions, args.repeat, args.starts)
    rows = [
        [
            name,
            len(st.call_us),
            median(st.call_us),
            median(st.first_ms),
            args.sessions,
            median(st.event_us),
            min(st.event_us),
            max(st.event_us),
            args.starts,
            median(st.start_us),
            min(st.start_us),
            max(st.start_us),
        ]
        for name, st in stats.items()
    ]
    print(table(HEADER, rows))
    starts = {name: median(st.start_us) for name, st in stats.items()}
    floor = starts.get("floor", math.nan)
    for name, us in starts.items():
        if name != "floor" and floor > 0:
            print(
                f"{name}: CPU per start {us:.0f} us = {us / floor:.2f}x the floor's {floor:.0f} us"
            )
    by = {name: median(st.event_us) for name, st in stats.items()}
    fk, off = by.get("flowkit", math.nan), by.get("official", math.nan)
    print(
        f"ratio={off / fk:.2f} {_servers.peer_figures(by, '.1f')} (server CPU us per timed event)"
    )
    return stats


if __name__ == "__main__":
    main()
