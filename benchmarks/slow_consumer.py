"""Slow clients reading a fast pipeline, per delivery policy: memory stays flat?

S clients (default 10) each call a fast tool and read its SSE stream at a
fixed slow rate (``--read-bytes`` per ``recv`` every ``--read-ms``, with a
small socket receive buffer so the kernel cannot absorb the stream) for at
most ``--duration`` seconds, while the client samples the server's RSS::

    python -m benchmarks.slow_consumer [--streams 10] [--count 20000] [--quick]

Scenarios (``benchmarks._flowkit_tools`` / ``benchmarks._official`` /
``benchmarks._fastmcp``):

* flowkit ``lossless`` — demo ``ticker(count)``: the pipeline runs at the
  client's pace; every progress delivered, in order;
* flowkit ``conflate`` — ``fast_progress(count)``: progress latest-wins;
  delivered < count, the last one delivered is ``count``;
* flowkit ``drop-oldest`` — ``fast_logs(count)``: logs dropped oldest
  first; the result's ``_meta["dev.flowkit/droppedLogs"]`` must equal
  count - logs the client saw;
* official and fastmcp ``ticker`` and ``fast_logs`` — the peers' only
  behaviour (neither has delivery policies).

Columns: per stream, items delivered (progress; logs for the log tools),
dropped as the client saw it, dropped as the server reported it, whether they
match; server RSS at start, max and at the end of the window; calls
finished within the window.

The last line: ``ratio=<official max RSS / flowkit max RSS>`` plus
``flowkit_late_growth_mib`` (RSS growth over the window's second half, worst
policy: ~0 means flat) and ``drops_match=<yes|no>``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import trio

from . import _servers
from ._client import CallResult, ClientError, Session, open_session
from ._load import sample_rss
from ._util import table

DROPPED_META = "dev.flowkit/droppedLogs"

SCENARIOS: list[tuple[str, str, str]] = [
    ("flowkit", "lossless", "ticker"),
    ("flowkit", "conflate", "fast_progress"),
    ("flowkit", "drop-oldest", "fast_logs"),
    ("official", "(lossless)", "ticker"),
    ("official", "(lossless)", "fast_logs"),
    ("fastmcp", "(lossless)", "ticker"),
    ("fastmcp", "(lossless)", "fast_logs"),
]


@dataclass
class Outcome:
    server: str
    policy: str
    tool: str
    streams: int
    count: int
    finished: int
    delivered: float
    dropped_seen: float
    dropped_reported: float | None
    match: str
    rss_start_mib: float
    rss_max_mib: float
    rss_end_mib: float
    series: list[tuple[float, int]] = field(default_factory=list)

    @property
    def late_growth_mib(self) -> float:
        """RSS growth over the second half of the window (flat memory: ~0)."""
        if not self.series:
            return math.nan
        half = self.series[-1][0] / 2
        mid = next(kib for t, kib in self.series if t >= half)
        return (max(kib for t, kib in self.series if t >= half) - mid) / 1024

    def row(self) -> list[Any]:
        return [
            self.server,
            self.policy,
            self.tool,
            self.streams,
            self.count,
            self.finished,
            self.delivered,
            self.dropped_seen,
            "-" if self.dropped_reported is None else self.dropped_reported,
            self.match,
            self.rss_start_mib,
            self.rss_max_mib,
            self.rss_end_mib,
        ]


HEADER = [
    "server",
    "policy",
    "tool",
    "streams",
    "items/call",
    "finished",
    "delivered/stream",
    "dropped seen/stream",
    "dropped reported/stream",
    "match",
    "RSS start MiB",
    "RSS max MiB",
    "RSS end MiB",
]


async def _scenario(
    srv: _servers.Server,
    tool: str,
    streams: int,
    count: int,
    read_bytes: int,
    read_ms: float,
    duration: float,
) -> tuple[list[CallResult], list[tuple[float, int]]]:
    sessions: list[Session] = []
    for _ in range(streams):
        s = Session(_servers.HOST, srv.port, _servers.PATH, rcvbuf=4096)
        await s.initialize()
        sessions.append(s)
    results: list[CallResult] = [CallResult() for _ in range(streams)]
    series: list[tuple[float, int]] = []
    t0 = trio.current_time()

    async def call(i: int) -> None:
        def keep(res: CallResult) -> None:
            results[i] = res

        with contextlib.suppress(OSError, ClientError):
            results[i] = await sessions[i].call_tool(
                tool,
                {"count": count},
                read_size=read_bytes,
                read_interval=read_ms / 1000,
                on_open=keep,
            )

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample_rss, srv, 0.25, series, t0)
            with trio.move_on_after(duration):
                async with trio.open_nursery() as calls:
                    for i in range(streams):
                        calls.start_soon(call, i)
            series.append((trio.current_time() - t0, srv.rss_kib()))
            nursery.cancel_scope.cancel()
    finally:
        for s in sessions:
            s.close()
    return results, series


def _log_index(data: Any) -> int | None:
    """The item index of a ``fast_logs`` log: ``{"i": i}`` (flowkit, official) or
    FastMCP's ``ctx.log`` shape, ``{"msg": ..., "extra": {"i": i}}``."""
    if isinstance(data, dict):
        if isinstance(data.get("extra"), dict):
            data = data["extra"]
        if isinstance(data.get("i"), int):
            return int(data["i"])
    return None


def _summarize(
    server: str, policy: str, tool: str, count: int, results: list[CallResult], series: Any
) -> Outcome:
    n = len(results)
    finished = sum(1 for r in results if r.ok)
    logs_tool = tool == "fast_logs"
    delivered = dropped_seen = 0.0
    reported: float | None = None
    match = "yes"
    for r in results:
        if logs_tool:
            seen = [i for i in map(_log_index, r.logs) if i is not None]
            if seen != sorted(seen) or len(set(seen)) != len(seen):
                match = "no (order)"
        else:
            seen = [int(p) for p in r.progress]
            if seen != sorted(seen) or len(set(seen)) != len(seen):
                match = "no (order)"
        delivered += len(seen)
        if r.ok:
            gone = count - len(seen)
            dropped_seen += gone
            meta = (r.response or {}).get("result", {}).get("_meta", {})
            if DROPPED_META in meta:
                reported = (reported or 0.0) + meta[DROPPED_META]
                if meta[DROPPED_META] != gone:
                    match = "no"
            elif policy == "drop-oldest":
                match = "no (not reported)"
            if policy == "conflate" and (not seen or seen[-1] != count):
                match = "no (last progress)"
            if policy in ("lossless", "(lossless)") and gone:
                match = "no (lost)"
        elif policy == "lossless" and seen and seen != list(range(1, len(seen) + 1)):
            match = "no (gap)"
    if policy == "conflate":
        match += " (conflated, not reported)" if match == "yes" else ""
    rss = [kib for _, kib in series] or [0]
    return Outcome(
        server,
        policy,
        tool,
        n,
        count,
        finished,
        delivered / n,
        dropped_seen / max(finished, 1),
        None if reported is None else reported / max(finished, 1),
        match,
        rss[0] / 1024,
        max(rss) / 1024,
        rss[-1] / 1024,
        list(series),
    )


def main(argv: list[str] | None = None) -> list[Outcome]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--read-bytes", type=int, default=2048)
    parser.add_argument("--read-ms", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--servers", default=_servers.DEFAULT_SERVERS)
    parser.add_argument("--quick", action="store_true", help="3 streams, 2000 items, 3 s (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.streams, args.count, args.duration = 3, 2000, 3.0
    wanted = _servers.selected(args.servers)
    outcomes = []
    for server, policy, tool in SCENARIOS:
        if server not in wanted:
            continue
        extra = _servers.FLOWKIT_TOOLS if server == "flowkit" else ()
        with _servers.running(server, extra) as srv:
            results, series = trio.run(
                _scenario,
                srv,
                tool,
                args.streams,
                args.count,
                args.read_bytes,
                args.read_ms,
                args.duration,
            )
        outcomes.append(_summarize(server, policy, tool, args.count, results, series))
    print(table(HEADER, [o.row() for o in outcomes]))
    fk = max((o.rss_max_mib for o in outcomes if o.server == "flowkit"), default=math.nan)
    off = max((o.rss_max_mib for o in outcomes if o.server == "official"), default=math.nan)
    fmcp = max((o.rss_max_mib for o in outcomes if o.server == "fastmcp"), default=math.nan)
    late = max((o.late_growth_mib for o in outcomes if o.server == "flowkit"), default=math.nan)
    matches = all(o.match.startswith("yes") for o in outcomes if o.server == "flowkit")
    print(
        f"ratio={off / fk:.2f} flowkit_rss_max_mib={fk:.1f} official_rss_max_mib={off:.1f} "
        f"fastmcp_rss_max_mib={fmcp:.1f} "
        f"flowkit_late_growth_mib={late:.1f} drops_match={'yes' if matches else 'no'}"
    )
    return outcomes


if __name__ == "__main__":
    main()


__all__ = ["Outcome", "main", "open_session"]
