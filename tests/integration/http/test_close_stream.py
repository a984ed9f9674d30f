"""A tool ends its own response early; the client reconnects and gets the rest.

"SSE polling" (SEP-1699, 2025-11-25): after the priming event (an id and a
``retry``) the server may close a call's SSE response before the result; the
client reconnects with GET + ``Last-Event-ID`` and receives everything after
it, exactly once, then the result. :class:`flowkit_http.CloseStream` is the
tool's way to ask for that. In the 2026-07-28 era closing the stream would be
a cancel, so there the marker does nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import trio

from flowkit_http import CloseStream, MCPApp, MCPServer, Progress, Result

from ._raw import JSON_HEADERS, call, initialize, messages, raw_request, request
from ._serving import serving


@attrs.define
class Gate:
    closed: trio.Event = attrs.Factory(trio.Event)
    go_on: trio.Event = attrs.Factory(trio.Event)


def make_server(gate: Gate) -> MCPServer:
    server = MCPServer("polling")

    @server.tool
    async def polled(before: int = 3, after: int = 3) -> AsyncIterator[Any]:
        """Some progress, close the response, wait for the test, more progress, a result."""
        for i in range(before):
            yield Progress(f"before {i}")
        yield CloseStream()
        gate.closed.set()
        await gate.go_on.wait()
        for i in range(after):
            yield Progress(f"after {i}")
        yield Result(structured={"steps": before + after})

    return server


async def test_close_stream_then_resume_with_last_event_id() -> None:
    gate = Gate()
    with trio.fail_after(20):
        async with serving(MCPApp(make_server(gate))) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")
            body = call(7, "polled", {"before": 3, "after": 4})
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                assert response.status == 200
                first, ended = await response.read()  # to the end: the server closed it
            assert ended
            priming = first[0]
            assert priming.id is not None
            assert priming.data == ""
            assert priming.retry == 1000
            before = messages(first)
            assert [m["params"]["progress"] for m in before] == [1, 2, 3]
            assert all("result" not in m for m in before)
            await gate.closed.wait()
            # The call goes on while nobody is connected; reconnect mid-call.
            resume = {
                **headers,
                "accept": "text/event-stream",
                "last-event-id": response.decoder.last_event_id,
            }
            async with raw_request(base, "GET", "/mcp", resume) as response:
                assert response.status == 200
                gate.go_on.set()
                rest, ended = await response.read()
            assert ended
            after = messages(rest)
            assert [m["params"]["progress"] for m in after[:-1]] == [4, 5, 6, 7]
            assert after[-1]["id"] == 7
            assert after[-1]["result"]["structuredContent"] == {"steps": 7}


async def test_everything_before_the_marker_goes_out_on_the_closed_response() -> None:
    """A fast tool: all it emitted before CloseStream is written before the close."""
    gate = Gate()
    gate.go_on.set()  # no pause: the tool runs on at full speed after the marker
    with trio.fail_after(20):
        async with serving(MCPApp(make_server(gate))) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")
            body = call(3, "polled", {"before": 200, "after": 200})
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                first, ended = await response.read()
            assert ended
            assert [m["params"]["progress"] for m in messages(first)] == list(range(1, 201))
            resume = {
                **headers,
                "accept": "text/event-stream",
                "last-event-id": response.decoder.last_event_id,
            }
            async with raw_request(base, "GET", "/mcp", resume) as response:
                assert response.status == 200
                rest, ended = await response.read()
            assert ended
            after = messages(rest)
            assert [m["params"]["progress"] for m in after[:-1]] == list(range(201, 401))
            assert after[-1]["result"]["structuredContent"] == {"steps": 400}


async def test_close_stream_is_a_no_op_in_the_stateless_era() -> None:
    gate = Gate()
    gate.go_on.set()
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "progressToken": "p",
    }
    body = request("tools/call", id=1, name="polled", arguments={}, _meta=meta)
    headers = {
        **JSON_HEADERS,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "polled",
    }
    with trio.fail_after(20):
        async with (
            serving(MCPApp(make_server(gate))) as base,
            raw_request(base, "POST", "/mcp", headers, body) as response,
        ):
            assert response.status == 200
            events, ended = await response.read()
    assert ended
    sent = messages(events)
    assert [m["params"]["progress"] for m in sent[:-1]] == [1, 2, 3, 4, 5, 6]
    assert sent[-1]["result"]["structuredContent"] == {"steps": 6}
    assert sent[-1]["result"]["resultType"] == "complete"
