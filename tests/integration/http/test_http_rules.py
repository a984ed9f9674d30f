"""Status codes and headers that need the real server (MCP-CHECKLIST A, B2, B4)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import trio

from flowkit.mcp import EndpointConfig
from flowkit_http import MCPApp, MCPServer, create_app

from ._raw import JSON_HEADERS, call, initialize, messages, request, sse_events
from ._serving import serving
from ._tools import make_server


async def test_refusals_before_and_after_the_body() -> None:
    server, _ = make_server()
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            ping = request("ping")
            # A2: a foreign Origin -> 403; a foreign Host (DNS rebinding) -> 403.
            r = await client.post(
                url, content=ping, headers={**JSON_HEADERS, "origin": "https://evil.example"}
            )
            assert r.status_code == 403
            assert "error" in r.json()
            r = await client.post(
                url, content=ping, headers={**JSON_HEADERS, "host": "evil.example"}
            )
            assert r.status_code == 403
            # A3: Accept must cover both; */* counts.
            r = await client.post(
                url, content=ping, headers={**JSON_HEADERS, "accept": "application/json"}
            )
            assert r.status_code == 406
            r = await client.post(
                url, content=ping, headers={**JSON_HEADERS, "content-type": "text/plain"}
            )
            assert r.status_code == 415
            r = await client.post(url, content=b"{nope", headers={**JSON_HEADERS, "accept": "*/*"})
            assert r.status_code == 400
            assert r.json()["error"]["code"] == -32700
            r = await client.post(url, content=b"[" + ping + b"]", headers=JSON_HEADERS)
            assert r.status_code == 400
            assert r.json()["error"]["code"] == -32600
            # A7: unknown method -> 405 with Allow.
            r = await client.request("PUT", url, content=ping, headers=JSON_HEADERS)
            assert r.status_code == 405
            assert r.headers["allow"] == "POST, GET, DELETE"
            # B2: no session -> 400; unknown session -> 404.
            r = await client.post(url, content=ping, headers=JSON_HEADERS)
            assert r.status_code == 400
            r = await client.post(
                url, content=ping, headers={**JSON_HEADERS, "mcp-session-id": "nope"}
            )
            assert r.status_code == 404
            # Other paths are Quart's (404 here), not the endpoint's.
            r = await client.get(base + "/elsewhere")
            assert r.status_code == 404


async def test_body_limit_413_streamed_and_declared() -> None:
    server = MCPServer("small", config=EndpointConfig(max_body_size=1000))
    app = MCPApp(server)
    big = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + b"x" * 5000 + b'"}}'

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    with trio.fail_after(20):
        async with serving(app) as base, httpx.AsyncClient() as client:
            r = await client.post(base + "/mcp", content=big, headers=JSON_HEADERS)
            assert r.status_code == 413  # Content-Length checked from the head
            r = await client.post(base + "/mcp", content=chunks(), headers=JSON_HEADERS)
            assert r.status_code == 413  # chunked: cut while reading


async def test_session_lifecycle_202_sse_headers_and_delete() -> None:
    server, _ = make_server()
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)  # asserts 200 + session id, 202
            assert all(0x21 <= ord(c) <= 0x7E for c in headers["mcp-session-id"])
            r = await client.post(url, content=request("ping", id=7), headers=headers)
            assert r.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
            # A5/A6: a tools/call answers with an SSE stream scoped to it.
            async with client.stream(
                "POST", url, content=call(2, "ticker", {"count": 3}), headers=headers
            ) as r:
                assert r.status_code == 200
                assert r.headers["content-type"] == "text/event-stream"
                assert r.headers["cache-control"] == "no-cache, no-transform"
                assert r.headers["x-accel-buffering"] == "no"
                events = sse_events(await r.aread())
            priming = events[0]
            assert priming.data == ""
            assert priming.id is not None
            assert priming.retry == 1000
            sent = messages(events[1:])
            assert len(sent) == len(events) - 1  # nothing but the messages after the priming
            assert [m["params"]["progress"] for m in sent[:-1]] == [1, 2, 3]
            assert sent[-1]["id"] == 2
            assert sent[-1]["result"]["structuredContent"] == {"count": 3}
            # B4: GET opens the standalone stream; a second one is 409.
            get_headers = {**headers, "accept": "text/event-stream"}
            async with client.stream("GET", url, headers=get_headers) as listen:
                assert listen.status_code == 200
                assert listen.headers["content-type"] == "text/event-stream"
                async with httpx.AsyncClient() as other:
                    second = await other.get(url, headers=get_headers)
                assert second.status_code == 409
            # B2: DELETE ends the session; it is 404 afterwards.
            r = await client.delete(url, headers=headers)
            assert r.status_code == 200
            r = await client.post(url, content=request("ping"), headers=headers)
            assert r.status_code == 404


async def test_client_response_and_notifications_get_202() -> None:
    server, _ = make_server()
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            r = await client.post(
                url,
                content=orjson.dumps({"jsonrpc": "2.0", "id": 99, "result": {}}),
                headers=headers,
            )
            assert r.status_code == 202
            assert r.content == b""
            cancel = request("notifications/cancelled", id=None, requestId=12345)
            r = await client.post(url, content=cancel, headers=headers)
            assert r.status_code == 202
            assert r.content == b""


async def test_set_level_silences_partial_results() -> None:
    """B11: logging/setLevel is honoured on tool-call streams."""
    server, _ = make_server()
    text = "# A\nOne. Two.\n\n# B\nThree."
    with trio.fail_after(20):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            r = await client.post(
                url, content=request("logging/setLevel", id=3, level="warning"), headers=headers
            )
            assert r.json()["result"] == {}
            body = call(4, "analyze_document", {"text": text})
            async with client.stream("POST", url, content=body, headers=headers) as response:
                events = sse_events(await response.aread())
            methods = [m.get("method") for m in messages(events)]
            assert "notifications/message" not in methods
            assert methods.count("notifications/progress") == 2
