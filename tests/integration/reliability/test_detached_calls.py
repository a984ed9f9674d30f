"""Issue 20, item 2, over real HTTP: calls whose 2025-era client hung up end.

Twenty ``ticker(count=10**12)`` calls are started on a real hypercorn server
and their clients hang up after the first progress events (a disconnect is
not a cancel in that era). One more call in the session is refused 429 with
``Retry-After`` (the per-session cap). With a 1 s grace period every detached
call is cancelled within seconds: the adapter holds no call, the CPU they
burned stops, a well-behaved client in another session is served throughout,
and a client resuming one of them reads its final JSON-RPC error.
"""

from __future__ import annotations

import time

import attrs
import httpx
import pytest
import trio

from flowkit.mcp import EndpointConfig, InMemoryEventStore, ServerSentEvent
from flowkit.mcp._sse import parse_event_id
from flowkit_http import MCPApp

from ..http._raw import call, initialize, messages, raw_request, sse_events
from ..http._serving import serving
from ._support import eventually, make_reliability_server

CALLS = 20
GRACE = 1.0


async def _start_and_hang_up(base: str, headers: dict[str, str], request_id: int) -> str:
    """Start a never-ending call, read three events, hang up; the last event id."""
    body = call(request_id, "ticker", {"count": 10**12, "interval_ms": 1})
    async with raw_request(base, "POST", "/mcp", headers, body) as response:
        assert response.status == 200
        events, _ = await response.read(stop=3)
    ids = [e.id for e in events if isinstance(e, ServerSentEvent) and e.id is not None]
    return ids[-1]


async def test_hung_up_calls_are_cancelled_after_the_grace_period_and_resumes_read_why() -> None:
    config = EndpointConfig(
        detached_call_grace=GRACE, max_calls_per_session=CALLS, calls_retry_after=2
    )
    server, _, _ = make_reliability_server(config)
    server.settings = attrs.evolve(server.settings, expiry_poll_interval=0.1)
    app = MCPApp(server)
    with trio.fail_after(60):
        async with serving(app) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            hostile = await initialize(client, url)
            last_ids: dict[int, str] = {}

            async def one(i: int) -> None:
                last_ids[i] = await _start_and_hang_up(base, hostile, i)

            async with trio.open_nursery() as nursery:
                for i in range(CALLS):
                    nursery.start_soon(one, i)
            assert len(app._calls) == CALLS  # the client is gone, the calls run on

            # One more call in that session: over the per-session cap.
            refused = await client.post(
                url, content=call(99, "ticker", {"count": 1}), headers=hostile
            )
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "2"
            assert refused.json()["error"]["code"] == -32000

            # A well-behaved client in its own session is served meanwhile.
            polite = await initialize(client, url)
            started = time.perf_counter()
            answer = await client.post(url, content=call(1, "ticker", {"count": 3}), headers=polite)
            latency = time.perf_counter() - started
            assert answer.status_code == 200
            assert b'"structuredContent":{"count":3}' in answer.content

            # The grace period ends every detached call.
            await eventually(lambda: not app._calls, poll=0.05)
            cancelled_after = time.perf_counter() - started

            # A client resuming one reads the events it missed, then the error.
            resume = {**hostile, "accept": "text/event-stream", "last-event-id": last_ids[0]}
            async with raw_request(base, "GET", "/mcp", resume) as response:
                assert response.status == 200
                events, ended = await response.read()
            assert ended
            final = messages(events)[-1]
            assert final["id"] == 0
            assert final["error"]["code"] == -32000
            assert "no client attached" in final["error"]["message"]

            # The session's slots are free again, and the server is alive.
            again = await client.post(
                url, content=call(100, "ticker", {"count": 2}), headers=hostile
            )
            assert again.status_code == 200
            assert messages(sse_events(again.content))[-1]["result"]["structuredContent"] == {
                "count": 2
            }
    print(
        f"\ndetached calls: {CALLS} hung-up ticker(10**12) calls cancelled "
        f"{cancelled_after:.2f} s after the well-behaved call started (grace {GRACE} s); "
        f"its latency {latency * 1000:.0f} ms"
    )


async def test_a_lossless_call_whose_client_is_gone_pauses_and_loses_nothing() -> None:
    """Backpressure, not eviction: it files what the store keeps of one stream, then waits."""
    server, _, _ = make_reliability_server(EndpointConfig(detached_call_grace=None))
    app = MCPApp(server)
    store = app.endpoint.event_store
    with trio.fail_after(30):
        async with serving(app) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")
            last_id = await _start_and_hang_up(base, headers, 7)
            (running,) = app._calls.values()
            await eventually(lambda: running.outbox.paused, poll=0.01)
            paused_at = len(store)
            assert paused_at <= store.max_events_per_stream  # nothing evicted
            # A resume gets every event after the last one read, with no gap,
            # and the call goes on.
            resume = {**headers, "accept": "text/event-stream", "last-event-id": last_id}
            async with raw_request(base, "GET", "/mcp", resume) as response:
                assert response.status == 200
                events, _ = await response.read(stop=paused_at + 50)
            seqs = [
                int(e.id.split(":")[1]) for e in events if isinstance(e, ServerSentEvent) and e.id
            ]
            first = int(last_id.split(":")[1]) + 1
            assert seqs == list(range(first, first + len(seqs)))
            assert len(seqs) >= paused_at + 50  # past the pause: it ran on once resumed
    print(f"\nlossless detached call: paused with {paused_at} events stored, none lost")


@pytest.mark.parametrize("bound", ["session", "server"])
async def test_a_detached_lossless_call_at_the_store_bound_pauses_and_loses_nothing(
    bound: str,
) -> None:
    """The session and server byte bounds backpressure a lossless call, never evict it.

    The store's bound (32 KiB for the session or 64 KiB for the server) is far
    below what one stream may keep (1,000 events, ~180 KB of ticks), so it is
    that bound the call meets. Meanwhile a conflating call in the same
    session (or another session) is served; its events are what the store
    evicts, counted.
    """
    store = InMemoryEventStore(
        max_bytes_per_session=32 * 1024 if bound == "session" else 2**30,
        max_bytes=64 * 1024 if bound == "server" else 2**30,
    )
    server, _, _ = make_reliability_server(EndpointConfig(detached_call_grace=None))
    server.event_store = store
    app = MCPApp(server)
    with trio.fail_after(30):
        async with serving(app) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            last_id = await _start_and_hang_up(base, headers, 7)
            (running,) = app._calls.values()
            await eventually(lambda: running.outbox.paused, poll=0.01)
            assert store.crowded(headers["mcp-session-id"])
            other = headers if bound == "session" else await initialize(client, url)
            answer = await client.post(
                url, content=call(8, "chatty", {"count": 500}), headers=other
            )
            assert answer.status_code == 200
            assert messages(sse_events(answer.content))[-1]["result"]
            assert store.evicted > 0  # the conflating call's events made room
            cursor = parse_event_id(last_id)
            assert cursor is not None
            kept = len(store.replay_after(headers["mcp-session-id"], cursor) or ())
            resume = {**headers, "accept": "text/event-stream", "last-event-id": last_id}
            async with raw_request(base, "GET", "/mcp", resume) as response:
                assert response.status == 200
                events, _ = await response.read(stop=kept + 50)
            seqs = [
                int(e.id.split(":")[1]) for e in events if isinstance(e, ServerSentEvent) and e.id
            ]
            first = int(last_id.split(":")[1]) + 1
            assert seqs == list(range(first, first + len(seqs)))  # no gap: nothing evicted
            assert len(seqs) >= kept + 50  # it ran on once resumed
    print(f"\n{bound} bound: a detached lossless call paused with {kept} unread events kept")
