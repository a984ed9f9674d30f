"""A client that stops reading must not grow server memory (either policy).

Assertions are on the outbox's bounded counts, not on RSS: the queue between
the pipeline and the socket can never hold more than its bound, and under the
lossless policy the pipeline itself stops.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from flowkit_http import MCPApp, OutboxStatistics

from ._raw import call, initialize, messages, raw_request
from ._serving import serving
from ._tools import make_server


async def _wait_for(app: MCPApp, predicate: Any) -> OutboxStatistics:
    """Poll the running call's statistics until ``predicate`` holds (bounded by fail_after)."""
    while True:
        stats = list(app.statistics().values())
        if stats and predicate(stats[0]):
            return stats[0]
        await trio.sleep(0.005)


async def test_lossless_slow_client_pauses_the_pipeline() -> None:
    server, _ = make_server(max_queued_events=16)
    app = MCPApp(server)
    count = 100_000
    with trio.fail_after(60):
        async with serving(app) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")
            body = call(1, "ticker", {"count": count})
            async with raw_request(
                base, "POST", "/mcp", headers, body, receive_buffer=4096
            ) as response:
                await response.read(stop=1)
                # Stop reading: the socket fills, then the outbox, then the pipeline waits.
                full = await _wait_for(app, lambda s: s.queued == s.max_queued)
                # A fast pipeline fills the outbox before the writer first
                # runs: wait until it stays full (the socket is full too).
                while True:
                    await trio.sleep(0.2)
                    later = next(iter(app.statistics().values()))
                    if later.delivered == full.delivered:
                        break
                    full = later
                assert later.queued_peak <= 16
                produced = later.delivered + later.queued
                assert produced < count  # paused at the client's pace
                assert produced == full.delivered + full.queued  # and not creeping on
                # Now read everything: every event, in order, and writes coalesced.
                events, ended = await response.read()
                stats = later
            assert ended
            sent = messages(events)
            progress = [m["params"]["progress"] for m in sent if "params" in m]
            assert progress[-1] == count
            assert progress == list(range(progress[0], count + 1))
            assert sent[-1]["result"]["structuredContent"] == {"count": count}
            assert stats.writes < stats.delivered


async def test_conflating_slow_client_keeps_memory_bounded_and_the_result() -> None:
    server, _ = make_server(max_queued_logs=8)
    app = MCPApp(server)
    count = 50_000
    with trio.fail_after(60):
        async with serving(app) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")
            body = call(1, "chatty", {"count": count})
            async with raw_request(
                base, "POST", "/mcp", headers, body, receive_buffer=4096
            ) as response:
                await response.read(stop=1)
                stats = await _wait_for(
                    app, lambda s: s.dropped_logs > 100 and s.conflated_progress > 100
                )
                assert stats.queued <= stats.max_queued == 8 + 2
                assert stats.queued_peak <= stats.max_queued
                events, ended = await response.read()
            assert ended
            sent = messages(events)
            progress = [
                m["params"]["progress"] for m in sent if m.get("method") == "notifications/progress"
            ]
            assert progress == sorted(set(progress))  # still strictly increasing
            assert len(progress) < count  # conflated
            final = sent[-1]["result"]
            assert final["structuredContent"] == {"count": count}  # never dropped
            assert final["_meta"]["dev.flowkit/droppedLogs"] > 0
