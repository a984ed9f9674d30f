"""Issue 6, item 4: stalled readers cost bounded memory and don't slow anyone else.

Two clients open fast streams with a small TCP receive window and stop
reading: one on a lossless tool (``ticker``, 10 million steps), one on a
conflating tool (``chatty``: progress + a log per item, as fast as it can).
While they stay stalled, 60 other calls run in three rounds (each in a
session deleted afterwards). Checked:

* per stream, the adapter never queues more than its bound
  (``max_queued_events`` lossless, ``max_queued_logs`` + 2 conflate), and the
  lossless pipeline is paused (its produced count stops moving);
* the traced Python heap does not grow while the conflating pipeline keeps
  producing (over 20,000 events between the two readings, taken with only
  the stalled streams running);
* every other call completes, each well within a generous bound (5 s) --
  bounded counts and loose bounds, no tight timings.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from flowkit_http import MCPApp, OutboxStatistics

from ..http._raw import call, initialize, messages, raw_request
from ..http._serving import serving
from ._support import eventually, make_reliability_server, traced_memory, tracing_memory

MAX_EVENTS = 32
MAX_LOGS = 16


def _stats(app: MCPApp, request_id: int) -> OutboxStatistics | None:
    for key, stats in app.statistics().items():
        if key.request_id == request_id:
            return stats
    return None


async def _others(base: str, client: httpx.AsyncClient, first_id: int) -> list[float]:
    """20 concurrent short calls in a fresh session, deleted after (its events too)."""
    latencies: list[float] = []
    headers = await initialize(client, base + "/mcp")

    async def one(id: int) -> None:
        started = trio.current_time()
        async with raw_request(
            base, "POST", "/mcp", headers, call(id, "ticker", {"count": 20})
        ) as response:
            events, ended = await response.read()
        assert ended
        assert messages(events)[-1]["result"]["structuredContent"] == {"count": 20}
        latencies.append(trio.current_time() - started)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(one, first_id + i)
    assert (await client.delete(base + "/mcp", headers=headers)).status_code == 200
    return latencies


async def test_stalled_readers_are_bounded_and_do_not_slow_other_clients() -> None:
    server, _, _ = make_reliability_server(max_queued_events=MAX_EVENTS, max_queued_logs=MAX_LOGS)
    app = MCPApp(server)
    result: dict[str, Any] = {}
    with tracing_memory(), trio.fail_after(90):
        async with serving(app) as base, httpx.AsyncClient() as client:
            stalled = await initialize(client, base + "/mcp")
            lossless = call(1, "ticker", {"count": 10_000_000})
            conflate = call(2, "chatty", {"count": 10_000_000})
            async with (
                raw_request(base, "POST", "/mcp", stalled, lossless, receive_buffer=4096) as a,
                raw_request(base, "POST", "/mcp", stalled, conflate, receive_buffer=4096) as b,
            ):
                await a.read(stop=1)
                await b.read(stop=1)
                # ... and neither reads again.
                await eventually(
                    lambda: (s := _stats(app, 1)) is not None and s.queued == MAX_EVENTS
                )
                # (By now this stream has its event-store bound, 1,000 events, stored.)
                await eventually(
                    lambda: (s := _stats(app, 2)) is not None and s.dropped_logs > 2000
                )
                latencies = await _others(base, client, 100)  # warm-up round
                before = traced_memory()
                paused = _stats(app, 1)
                produced_before = _stats(app, 2)
                assert produced_before is not None
                start = produced_before.dropped_logs + produced_before.conflated_progress
                # Memory: only the stalled streams run between the two readings
                # (other calls leave trio timers and connection buffers behind,
                # which is noise here, not the stalled streams' cost).
                await eventually(
                    lambda: (
                        (s := _stats(app, 2)) is not None
                        and s.dropped_logs + s.conflated_progress > start + 20_000
                    )
                )
                after = traced_memory()
                produced_after = _stats(app, 2)
                # Latency: two more rounds while both readers stay stalled.
                for round in range(2):
                    latencies += await _others(base, client, 200 + 100 * round)
                lossless_stats = _stats(app, 1)
                conflate_stats = _stats(app, 2)
            assert paused is not None
            assert lossless_stats is not None
            assert conflate_stats is not None
            result = {
                "paused": paused,
                "lossless": lossless_stats,
                "conflate_before": produced_before,
                "conflate": conflate_stats,
                "conflate_after": produced_after,
                "latencies": latencies,
                "heap": (before, after),
            }
            # Stop the stalled calls (a disconnect alone does not, in this era).
            assert (await client.delete(base + "/mcp", headers=stalled)).status_code == 200
    lossless_stats, conflate_stats = result["lossless"], result["conflate"]
    assert lossless_stats.queued_peak <= MAX_EVENTS
    # Paused: nothing more was produced while we waited.
    paused = result["paused"]
    assert lossless_stats.delivered + lossless_stats.queued == paused.delivered + paused.queued
    assert conflate_stats.queued_peak <= MAX_LOGS + 2
    produced = (
        result["conflate_after"].dropped_logs + result["conflate_after"].conflated_progress
    ) - (result["conflate_before"].dropped_logs + result["conflate_before"].conflated_progress)
    before, after = result["heap"]
    latencies = result["latencies"]
    print(
        f"\nslow clients: lossless queue peak {lossless_stats.queued_peak}/{MAX_EVENTS} (paused), "
        f"conflate queue peak {conflate_stats.queued_peak}/{MAX_LOGS + 2} with {produced} events "
        f"produced while measured; traced heap {before} B -> {after} B; "
        f"{len(latencies)} other calls, max latency {max(latencies) * 1000:.0f} ms"
    )
    assert produced > 10_000  # the conflating pipeline really kept going ...
    assert after - before < 256 * 1024  # ... without the heap growing with it
    assert len(latencies) == 60
    assert max(latencies) < 5.0
