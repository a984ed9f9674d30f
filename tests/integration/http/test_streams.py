"""Streams against the real server: resumption, cancellation, keepalive, eras, shutdown."""

from __future__ import annotations

import random
from typing import Any

import httpx
import orjson
import trio
from quart_trio import QuartTrio

from flowkit.mcp import ServerSentEvent, SSEComment
from flowkit_http import Progress, create_app, mount

from ._raw import JSON_HEADERS, Event, call, initialize, messages, raw_request, request, sse_events
from ._serving import serving
from ._tools import make_server


async def test_resume_after_disconnects_delivers_every_event_exactly_once_in_order() -> None:
    """ "Resumability and Redelivery": GET + Last-Event-ID replays only that stream's later events."""
    server, _ = make_server()
    rng = random.Random(1234)
    count = 120
    with trio.fail_after(30):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            received: list[dict[str, Any]] = []
            last_id: str | None = None
            connections = 0
            done = False
            while not done:
                connections += 1
                if last_id is None:
                    body = call(5, "ticker", {"count": count, "interval_ms": 2})
                    ctx = raw_request(base, "POST", "/mcp", headers, body)
                else:
                    resume = {**headers, "accept": "text/event-stream", "last-event-id": last_id}
                    ctx = raw_request(base, "GET", "/mcp", resume)
                async with ctx as response:
                    if response.status == 409:  # the old connection's close not seen yet
                        await trio.sleep(0.01)
                        continue
                    assert response.status == 200
                    # Disconnect at a random point (or read to the end after a few rounds).
                    stop = rng.randint(1, 25) if connections < 6 else None
                    events, done = await response.read(stop)
                for event in events:
                    if isinstance(event, ServerSentEvent) and event.id is not None:
                        last_id = event.id
                received += messages(events)
                if received and "result" in received[-1]:
                    done = True
            progress = [
                m["params"]["progress"]
                for m in received
                if m.get("method") == "notifications/progress"
            ]
            assert progress == list(range(1, count + 1))
            assert received[-1]["id"] == 5
            assert sum("result" in m for m in received) == 1
            assert connections >= 3


async def test_resume_never_crosses_sessions() -> None:
    server, _ = make_server()
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            mine = await initialize(client, url)
            theirs = await initialize(client, url)
            async with client.stream(
                "POST", url, content=call(1, "ticker", {"count": 3}), headers=mine
            ) as r:
                events = sse_events(await r.aread())
            event_id = events[-1].id
            assert event_id is not None
            r = await client.get(
                url, headers={**theirs, "accept": "text/event-stream", "last-event-id": event_id}
            )
            assert r.status_code == 404


async def test_cancelled_notification_stops_the_pipeline_and_sends_no_response() -> None:
    """B6: notifications/cancelled -> stop the work, free resources, send no response."""
    server, probe = make_server()
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            body = call(9, "forever", {"interval_ms": 5})
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                before, _ = await response.read(stop=4)
                cancel = request("notifications/cancelled", id=None, requestId=9, reason="bored")
                r = await client.post(url, content=cancel, headers=headers)
                assert r.status_code == 202
                after, ended = await response.read()
            assert ended
            await probe.stopped.wait()
            assert probe.cancelled
            sent = messages(before + after)
            assert sent
            assert all(m.get("method") == "notifications/progress" for m in sent)  # no response
            # The id is free again: a new call with it is not "already in flight".
            async with client.stream(
                "POST", url, content=call(9, "ticker", {"count": 1}), headers=headers
            ) as r:
                assert "result" in (await r.aread()).decode()


async def test_keepalive_comment_on_an_idle_stream() -> None:
    server, _ = make_server(keepalive=0.05)
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            body = call(3, "quiet", {"seconds": 0.5})
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                events, _ = await response.read()
            comments = [e for e in events if isinstance(e, SSEComment)]
            assert comments, "no keepalive on an idle stream"
            assert messages(events)[-1]["result"]["structuredContent"] == {"slept": 0.5}
            # Keepalives came while the tool was silent, before its result.
            assert events.index(comments[0]) < len(events) - 1


async def test_no_keepalive_on_a_busy_stream() -> None:
    """The shared keepalive task pokes only streams idle for the interval."""
    server, _ = make_server(keepalive=0.2)
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            # 40 ticks 25 ms apart: a second of output, never 0.2 s of silence.
            body = call(4, "ticker", {"count": 40, "interval_ms": 25})
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                events, ended = await response.read()
            assert ended
            assert not [e for e in events if isinstance(e, SSEComment)], (
                "keepalive on a busy stream"
            )
            assert messages(events)[-1]["result"]["structuredContent"] == {"count": 40}


async def test_keepalive_on_idle_conflating_and_listen_streams() -> None:
    """Both outbox policies and a listen stream get comments when silent."""
    server, _ = make_server(keepalive=0.05)

    @server.tool(policy="conflate")
    async def quiet_feed(seconds: float) -> Any:
        await trio.sleep(seconds)
        yield Progress("done")

    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            body = call(5, "quiet_feed", {"seconds": 0.4})
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                events, _ = await response.read()
            comments = [e for e in events if isinstance(e, SSEComment)]
            assert comments, "no keepalive on an idle conflating stream"
            assert events.index(comments[0]) < len(events) - 1
            assert "result" in messages(events)[-1]
            listen = {**headers, "accept": "text/event-stream"}
            async with raw_request(base, "GET", "/mcp", listen) as response:
                assert response.status == 200
                seen: list[Event] = []
                with trio.move_on_after(0.4):
                    # A priming event may come first; then only comments.
                    while not any(isinstance(e, SSEComment) for e in seen):
                        chunk = await response.body_chunk()
                        assert chunk is not None, "the listen stream ended"
                        response.decoder.receive_data(chunk)
                        seen += response.decoder
            assert any(isinstance(e, SSEComment) for e in seen), (
                "no keepalive on an idle listen stream"
            )


async def test_a_generator_that_never_suspends_runs_in_the_runner_without_starving() -> None:
    """Plain generators run in the runner's task (no pump): one that never awaits,
    its client gone (2025 era: the call goes on, detached, until it has filed
    what the event store keeps of its stream, then pauses), still lets the
    server serve other requests, and notifications/cancelled stops it."""
    server, _ = make_server()
    spun = 0
    closed = trio.Event()

    @server.tool
    async def spin() -> Any:
        nonlocal spun
        try:
            while True:
                spun += 1
                yield spun
        finally:
            closed.set()

    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            async with raw_request(base, "POST", "/mcp", headers, call(7, "spin", {})) as response:
                events, _ = await response.read(stop=300)
            progress = [m["params"]["progress"] for m in messages(events)]
            assert progress == list(range(1, len(progress) + 1))
            # Detached and spinning: other requests are still served...
            async with client.stream(
                "POST", url, content=call(8, "ticker", {"count": 2}), headers=headers
            ) as r:
                assert "result" in (await r.aread()).decode()
            cancel = request("notifications/cancelled", id=None, requestId=7, reason="done")
            assert (await client.post(url, content=cancel, headers=headers)).status_code == 202
            await closed.wait()  # ...and the cancel closed the generator
            # Paused, not spinning for ever: what was read, what the socket
            # buffers held, and at most the store's 1,000 events per stream.
            assert spun < 5_000


async def test_stateless_era_disconnect_is_a_cancel() -> None:
    """2026-07-28: closing the response stream IS cancellation (C6)."""
    server, probe = make_server()
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "progressToken": "p",
    }
    body = request("tools/call", id=1, name="forever", arguments={"interval_ms": 5}, _meta=meta)
    headers = {
        **JSON_HEADERS,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "forever",
    }
    with trio.fail_after(20):
        async with serving(create_app(server)) as base:
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                assert response.status == 200
                events, _ = await response.read(stop=2)
            assert messages(events)[0]["method"] == "notifications/progress"
            await probe.stopped.wait()
            assert probe.cancelled


async def test_handshake_era_disconnect_is_not_a_cancel() -> None:
    """B6: a dropped connection is not a cancel; the work goes on to completion."""
    server, _ = make_server()
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            body = call(4, "quiet", {"seconds": 0.2})
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                events, _ = await response.read(stop=1)  # just the priming event
            primed = events[0].id
            assert primed is not None
            await trio.sleep(0.4)  # the tool finishes with nobody connected
            r = await client.get(
                url, headers={**headers, "accept": "text/event-stream", "last-event-id": primed}
            )
            assert r.status_code == 200
            (message,) = messages(sse_events(r.content))
            assert message["result"]["structuredContent"] == {"slept": 0.2}


async def test_quart_response_timeout_does_not_cut_streams() -> None:
    server, _ = make_server()
    app = QuartTrio("host-app")
    app.config["RESPONSE_TIMEOUT"] = 0.2

    @app.route("/hello")
    async def hello() -> str:
        return "hello"

    mount(app, server)
    with trio.fail_after(20):
        async with serving(app) as base, httpx.AsyncClient() as client:
            assert (await client.get(base + "/hello")).text == "hello"
            url = base + "/mcp"
            headers = await initialize(client, url)
            body = call(2, "ticker", {"count": 40, "interval_ms": 25})  # ~1 s, 5x the timeout
            async with client.stream("POST", url, content=body, headers=headers) as r:
                events = sse_events(await r.aread())
            last = messages(events)[-1]
            assert last["result"]["structuredContent"] == {"count": 40}


async def test_graceful_shutdown_closes_open_streams_promptly() -> None:
    server, probe = make_server()
    app = create_app(server)
    mcp = app.extensions["flowkit_mcp"]
    with trio.fail_after(20):
        async with serving(app, graceful_timeout=30) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            async with raw_request(
                base, "POST", "/mcp", headers, call(1, "forever", {})
            ) as response:
                await response.read(stop=2)
                started = trio.current_time()
                mcp.close_streams()
                _, ended = await response.read()
            assert ended
            assert trio.current_time() - started < 2
            await probe.stopped.wait()


async def test_payloads_survive_json_round_trip() -> None:
    server, _ = make_server()
    text = '# Ünïcode\nÇa va? Oui.\n\n# Quotes\n"x"\ny'
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            async with client.stream(
                "POST", url, content=call(1, "analyze_document", {"text": text}), headers=headers
            ) as r:
                events = sse_events(await r.aread())
            result = messages(events)[-1]["result"]
            assert result["structuredContent"]["sections"] == 2
            assert orjson.loads(result["content"][-1]["text"]) == result["structuredContent"]
