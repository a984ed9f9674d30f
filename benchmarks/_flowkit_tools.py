"""flowkit's demo server plus the tools the slow-consumer and batching benchmarks need.

Served as ``flowkit serve benchmarks._flowkit_tools:server`` (a child
process only: the demo ``server`` object is extended in that process). The
extra tools, each with an equivalent in ``benchmarks._official`` where the
comparison makes sense:

* ``fast_progress(count)`` — ``count`` progress steps as fast as the
  pipeline goes, policy ``conflate`` (latest progress wins);
* ``fast_logs(count)`` — ``count`` partial results (a progress step + a
  ``notifications/message`` with ``data={"i": i}``), policy ``conflate``
  (logs dropped oldest-first, the count reported in the result's ``_meta``);
* ``stamped(count, rate)`` — lossless progress whose message is the
  server's ``time.monotonic()`` at emission (``t=<seconds>``), paced at
  ``rate`` items/s in 1 ms ticks (``rate=0``: as fast as possible).

With ``FLOWKIT_BENCH_MAX_CALLS=N``, the endpoint's cap on calls in flight
(``max_calls``, 1,024 by default; beyond it a call gets 429) is ``N``: for
the benchmarks that hold thousands of calls open at once.

With ``FLOWKIT_BENCH_COALESCE=0`` in the environment, the adapter's SSE
writer is replaced by one that sends each event in its own write (adaptive
write coalescing off) — a benchmark-only switch, for ``benchmarks.batching``.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import attrs
import trio

from flowkit_http import Partial, Progress, Result
from flowkit_http._demo import server

__all__ = ["server"]


@server.tool(policy="conflate")
async def fast_progress(count: int) -> AsyncIterator[Progress | Result]:
    """`count` progress steps as fast as possible (latest wins)."""
    for i in range(1, count + 1):
        yield Progress(f"step {i}", total=count)
        if i % 64 == 0:
            await trio.lowlevel.checkpoint()
    yield Result(structured={"count": count})


@server.tool(policy="conflate")
async def fast_logs(count: int) -> AsyncIterator[Partial | Result]:
    """`count` partial results as fast as possible (logs drop oldest)."""
    for i in range(1, count + 1):
        yield Partial({"i": i}, message=f"item {i}", total=count)
        if i % 64 == 0:
            await trio.lowlevel.checkpoint()
    yield Result(structured={"count": count})


@server.tool()
async def stamped(count: int, rate: float = 0.0) -> AsyncIterator[Progress | Result]:
    """`count` progress steps stamped with the server's monotonic clock."""
    start = trio.current_time()
    per_tick = max(1, round(rate / 1000)) if rate > 0 else 0
    for i in range(1, count + 1):
        if per_tick and i % per_tick == 1 % per_tick:
            await trio.sleep_until(start + (i - 1) / rate)
        yield Progress(f"t={time.monotonic():.6f}", total=count)
    yield Result(structured={"count": count})


def _no_coalescing() -> None:
    """Coalescing off: a call's writer takes one event per write (benchmark-only).

    The writer writes what one ``take`` returns in one write; a lossless
    outbox that hands over one event at a time makes that one write per
    event, and the rest of the write path (keepalives, ends) is unchanged.
    """
    from flowkit_http import _outbox

    _outbox.LosslessOutbox._take_at_most = 1


if os.environ.get("FLOWKIT_BENCH_COALESCE", "1") == "0":
    _no_coalescing()

if os.environ.get("FLOWKIT_BENCH_MAX_CALLS"):
    server.config = attrs.evolve(
        server.config, max_calls=int(os.environ["FLOWKIT_BENCH_MAX_CALLS"])
    )
