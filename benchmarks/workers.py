"""``flowkit serve --workers``: 1 worker against 2, at a load that saturates one.

Both servers are ``flowkit serve BENCH_TOOLS --redis URL`` (the tools of
``benchmarks.concurrent``'s flowkit; ``--workers`` needs ``--redis``; a
redis-server of the benchmark's own, as in ``benchmarks.redis_store``, or
``--url``, whose databases 1 to 4 it uses: the session cap is cluster-wide,
so each run gets a database of its own), one with ``--workers 1`` and one with
``--workers 2``, one after the other in the same run. The load is
``benchmarks.concurrent``'s: C sessions, each calling ``ticker`` with
``count`` progress notifications ``interval_ms`` apart, the starts spread
over one interval, so ``C x 1000 / interval_ms`` notifications/s are asked
for. At a C where one worker falls behind, its delivered rate is below what
was asked, and a second worker (the second core) delivers more::

    python -m benchmarks.workers [--sessions 1000] [--count 40] [--interval-ms 50] [--eras E,E]
        [--ramp-ms N] [--quick]

Each era is measured with 1 and then 2 workers (``--eras``, default both):

* 2025-11-25: sessions, so every write of every stream is appended to Redis
  before it is sent (the event store that makes resumes work anywhere):
  redis-server works for every notification, on the same two cores;
* 2026-07-28: stateless calls, which never touch Redis: the workers' own
  CPU is what scales.

The load client and redis-server run on the same machine and compete for
its cores: the ratio is what this machine gives, a lower bound of what two
workers on two free cores give. "peak RSS" is the process started: with 2
workers, the parent (it holds no sessions).
The last line, one part per era: ``ratio=<2 workers / 1 worker notif/s>
one=<notif/s> two=<notif/s> era=<revision>; ... asked=<notif/s>``.
"""

from __future__ import annotations

import argparse
import contextlib

from . import concurrent
from ._client import PROTOCOL_VERSION, STATELESS_VERSION, raise_nofile
from ._util import outcome_table
from .redis_store import own_redis


def main(argv: list[str] | None = None) -> list[concurrent.Outcome]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000, help="C: concurrent streams")
    parser.add_argument("--count", type=int, default=40, help="notifications per stream")
    parser.add_argument("--interval-ms", type=int, default=50)
    parser.add_argument("--url", help="a Redis of its own (default: start one)")
    parser.add_argument("--redis-server", help="the redis-server to start (default: on PATH)")
    parser.add_argument(
        "--eras",
        default=f"{PROTOCOL_VERSION},{STATELESS_VERSION}",
        help="the calls' protocol revisions, each measured with 1 and 2 workers",
    )
    parser.add_argument(
        "--ramp-ms",
        type=int,
        default=None,
        help="spread the call starts over N ms (default: one interval; benchmarks.concurrent)",
    )
    parser.add_argument("--quick", action="store_true", help="C=40, 10 notifications (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.count = 40, 10
    raise_nofile(2 * args.sessions + 256)
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(own_redis(args.redis_server))
        outcomes = []
        ratios = []
        db = 0
        for era in args.eras.split(","):
            pair = []
            for workers in (1, 2):
                # A database per run: the session cap is cluster-wide (in Redis),
                # and one run's sessions would count against the next one's.
                db += 1
                extra = ["--redis", f"{url.rsplit('/', 1)[0]}/{db}", "--workers", str(workers)]
                outcome = concurrent.run_one(
                    "flowkit",
                    args.sessions,
                    args.count,
                    args.interval_ms,
                    extra,
                    era=era,
                    ramp_ms=args.ramp_ms,
                )
                outcome.server = f"flowkit --workers {workers} ({era})"
                pair.append(outcome)
            outcomes += pair
            one, two = (o.notif_per_s for o in pair)
            ratios.append(f"ratio={two / one:.2f} one={one:.0f} two={two:.0f} era={era}")
    print(outcome_table(concurrent.HEADER, outcomes))
    asked = args.sessions * 1000 / args.interval_ms
    print(f"{'; '.join(ratios)} asked={asked:.0f} (notif/s)")
    return outcomes


if __name__ == "__main__":
    main()
