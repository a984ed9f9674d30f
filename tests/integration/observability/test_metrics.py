"""Issue 14, item 1: ``/metrics`` in the Prometheus text format, read from statistics.

Every figure is checked against what the client itself saw (events and bytes
of the responses, the tool's own report of its drops), and every family's
name and type as prometheus_client's parser reads them.
"""

from __future__ import annotations

import orjson
import trio

from flowkit.mcp import InMemoryEventStore
from flowkit_http import Observability
from tests.integration.http._raw import JSON_HEADERS, call, raw_request, request
from tests.integration.http._tools import make_server

from ._app import observed, run_call, scrape, session, value

# Every flowkit family and its type (docs/observability.md lists the same).
FAMILIES = {
    "flowkit_ready": "gauge",
    "flowkit_active_sessions": "gauge",
    "flowkit_active_streams": "gauge",
    "flowkit_resumes": "counter",
    "flowkit_keepalives": "counter",
    "flowkit_refusals": "counter",
    "flowkit_tool_calls": "counter",
    "flowkit_active_calls": "gauge",
    "flowkit_tool_call_duration_seconds": "histogram",
    "flowkit_events_sent": "counter",
    "flowkit_writes": "counter",
    "flowkit_bytes_sent": "counter",
    "flowkit_events_dropped": "counter",
    "flowkit_progress_conflated": "counter",
    "flowkit_outbox_queued_events": "gauge",
    "flowkit_stage_items_in": "counter",
    "flowkit_stage_items_out": "counter",
    "flowkit_stage_dropped": "counter",
    "flowkit_stage_filtered": "counter",
    "flowkit_stage_injected": "counter",
    "flowkit_stage_send_blocked_seconds": "counter",
    "flowkit_stage_buffered_items": "gauge",
    "flowkit_stage_buffered_peak_items": "gauge",
    "flowkit_stage_batch_size": "histogram",
    "flowkit_event_store_evicted": "counter",
    "flowkit_event_store_events": "gauge",
    "flowkit_event_store_bytes": "gauge",
}


async def test_the_event_store_evictions_and_size_are_exposed() -> None:
    store = InMemoryEventStore(max_events=8)
    server, _ = make_server()
    server.event_store = store
    async with observed(server) as (_base, client, _probe):
        headers = await session(client)
        before = await scrape(client)
        await run_call(client, headers, 1, "ticker", {"count": 30})
        after = await scrape(client)
    assert value(before, "flowkit_event_store_evicted_total") == 0
    assert store.evicted >= 20  # 30 progress events and a result through 8 places
    assert value(after, "flowkit_event_store_evicted_total") == store.evicted
    assert value(after, "flowkit_event_store_events") == len(store) == 8
    assert value(after, "flowkit_event_store_bytes") == store.size > 0


def _events(response_body: bytes) -> int:
    return sum(1 for line in response_body.split(b"\n") if line.startswith(b"data:"))


async def test_calls_events_bytes_drops_and_refusals_match_what_the_client_saw() -> None:
    async with observed() as (_base, client, _probe):
        headers = await session(client)
        responses = [
            await run_call(client, headers, i, "ticker", {"count": 5}) for i in range(1, 4)
        ]
        await run_call(client, headers, 4, "boom", {"after": 2})
        feed = await run_call(
            client, headers, 5, "sensor_feed", {"readings": 3000, "consume_ms": 0.2}
        )
        # Refusals: an unknown session (404) and a foreign Host (403).
        gone = {**headers, "mcp-session-id": "no-such-session"}
        assert (await client.post("/mcp", content=request("ping"), headers=gone)).status_code == 404
        foreign = {**JSON_HEADERS, "host": "evil.example"}
        assert (
            await client.post("/mcp", content=request("ping"), headers=foreign)
        ).status_code == 403
        families = await scrape(client)

    for name, kind in FAMILIES.items():
        assert families[name].type == kind, name
    # flowkit_group_/flowkit_sink_: the process's Redis pipelines (earlier tests' may live on)
    process_wide = ("flowkit_group_", "flowkit_sink_")
    flowkit = {n for n in families if n.startswith("flowkit_") and not n.startswith(process_wide)}
    assert flowkit == set(FAMILIES), flowkit ^ set(FAMILIES)

    assert value(families, "flowkit_tool_calls_total", tool="ticker", outcome="ok") == 3
    assert value(families, "flowkit_tool_calls_total", tool="ticker", outcome="error") == 0
    assert value(families, "flowkit_tool_calls_total", tool="boom", outcome="error") == 1
    assert value(families, "flowkit_tool_call_duration_seconds_count", tool="ticker") == 3
    assert (
        value(families, "flowkit_tool_call_duration_seconds_bucket", tool="ticker", le="+Inf") == 3
    )
    assert value(families, "flowkit_tool_call_duration_seconds_sum", tool="ticker") > 0
    # Events and bytes: exactly what the client received on those responses
    # (the priming event is written by the response before the call's events).
    sent = sum(_events(r.content) for r in responses)
    assert value(families, "flowkit_events_sent_total", tool="ticker") == sent - len(responses)
    assert value(families, "flowkit_bytes_sent_total", tool="ticker") == sum(
        len(r.content) for r in responses
    )
    assert value(families, "flowkit_active_sessions") == 1
    assert value(families, "flowkit_active_calls", tool="ticker") == 0
    assert value(families, "flowkit_refusals_total", status="404") == 1
    assert value(families, "flowkit_refusals_total", status="403") == 1
    assert value(families, "flowkit_ready") == 1

    # The pipeline's stages, as the tool itself reported them.
    (final,) = [
        orjson.loads(line[5:])
        for line in feed.content.split(b"\n")
        if line.startswith(b"data:") and b'"result"' in line
    ]
    report = final["result"]["structuredContent"]
    assert report["dropped"] > 0, report  # a slow consumer: drop_oldest had to drop
    assert (
        value(families, "flowkit_stage_dropped_total", tool="sensor_feed", stage="drop_oldest")
        == report["dropped"]
    )
    assert (
        value(families, "flowkit_stage_items_in_total", tool="sensor_feed", stage="drop_oldest")
        == report["readings"]
    )
    assert (
        value(
            families, "flowkit_stage_batch_size_count", tool="sensor_feed", stage="adaptive_batch"
        )
        == report["batches"]
    )
    assert (
        value(families, "flowkit_stage_batch_size_sum", tool="sensor_feed", stage="adaptive_batch")
        == report["delivered"]
    )

    # Bounded labels: flowkit's are tool, stage, outcome, status (and le);
    # no session or request id anywhere.
    flowkit_samples = [s for name in flowkit for s in families[name].samples]
    assert {k for s in flowkit_samples for k in s.labels} <= {
        "tool",
        "stage",
        "outcome",
        "status",
        "le",
    }
    assert {s.labels["tool"] for s in flowkit_samples if "tool" in s.labels} == {
        "ticker",
        "boom",
        "sensor_feed",
    }
    every_value = {v for f in families.values() for s in f.samples for v in s.labels.values()}
    assert headers["mcp-session-id"] not in every_value


async def test_a_running_call_is_counted_live_and_counters_never_go_back() -> None:
    async with observed() as (_base, client, probe):
        assert probe is not None
        headers = await session(client)
        seen = trio.Event()

        async def forever() -> None:
            body = call(7, "forever", {"interval_ms": 5})
            async with client.stream("POST", "/mcp", content=body, headers=headers) as response:
                async for line in response.aiter_lines():
                    if "notifications/progress" in line:
                        seen.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(forever)
            await seen.wait()  # the client has an event: the outbox delivered it
            during = await scrape(client)
            assert value(during, "flowkit_active_calls", tool="forever") == 1
            assert value(during, "flowkit_active_streams") == 1
            live_events = value(during, "flowkit_events_sent_total", tool="forever")
            assert live_events >= 1
            cancel = request("notifications/cancelled", id=None, requestId=7, reason="enough")
            assert (await client.post("/mcp", content=cancel, headers=headers)).status_code == 202
        await probe.stopped.wait()
        after = await scrape(client)
    assert value(after, "flowkit_tool_calls_total", tool="forever", outcome="cancelled") == 1
    assert value(after, "flowkit_active_calls", tool="forever") == 0
    assert value(after, "flowkit_active_streams") == 0
    assert value(after, "flowkit_events_sent_total", tool="forever") >= live_events


async def test_metrics_can_move_and_be_turned_off() -> None:
    async with observed(observe=Observability(metrics_path="/internal/metrics")) as (
        _b,
        client,
        _p,
    ):
        assert (await client.get("/metrics")).status_code == 404
        assert "flowkit_ready" in await scrape(client, "/internal/metrics")
    async with observed(observe=Observability(metrics=False)) as (_b, client, _p):
        assert (await client.get("/metrics")).status_code == 404


async def test_keepalives_and_resumes_are_counted() -> None:
    server, probe = make_server(keepalive=0.2)
    async with observed(server) as (base, client, _probe):
        headers = await session(client)
        quiet = await run_call(client, headers, 1, "quiet", {"seconds": 0.7})
        comments = sum(1 for line in quiet.content.split(b"\n") if line.startswith(b":"))
        assert comments >= 1
        # A stream cut by the client, then resumed with Last-Event-ID.
        body = call(2, "forever", {"interval_ms": 5})
        async with raw_request(base, "POST", "/mcp", headers, body) as response:
            events, _ended = await response.read(stop=2)  # the priming event, a progress
        event_id = events[-1].id
        assert event_id is not None
        resume = {**headers, "last-event-id": event_id, "accept": "text/event-stream"}
        async with raw_request(base, "GET", "/mcp", resume) as response:
            assert response.status == 200
            await response.read(stop=1)
        cancel = request("notifications/cancelled", id=None, requestId=2, reason="enough")
        assert (await client.post("/mcp", content=cancel, headers=headers)).status_code == 202
        await probe.stopped.wait()
        families = await scrape(client)
    assert value(families, "flowkit_resumes_total") == 1
    # Every comment the client saw was a keepalive (the forever call's busy
    # streams may add one if the machine stalls).
    assert value(families, "flowkit_keepalives_total") >= comments
