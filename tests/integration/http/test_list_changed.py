"""Tool list changes reach open listen streams over real HTTP, in both eras.

2026-07-28: a ``subscriptions/listen`` POST answers with an SSE stream whose
first event is the acknowledgement; a change of the server's tools then
arrives on it as ``notifications/tools/list_changed`` tagged with the
subscription id. 2025-11-25: the same change arrives on the session's GET
stream. The adapter wires ``ToolSet.on_change`` to ``Endpoint.list_changed``.
"""

from __future__ import annotations

import httpx
import trio

from flowkit.mcp import EndpointConfig, Tool
from flowkit_http import MCPServer, create_app

from ._raw import JSON_HEADERS, initialize, messages, raw_request, request
from ._serving import serving

V = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": V,
    "io.modelcontextprotocol/clientCapabilities": {},
}


def _server() -> MCPServer:
    server = MCPServer("listen", config=EndpointConfig(tools_list_changed=True))

    @server.tool
    def grow() -> str:
        """Adds a tool."""
        server.tools.add(Tool.from_function(lambda: "new", name="new", description="New."))
        return "grown"

    return server


def _modern(method: str, name: str | None = None) -> dict[str, str]:
    headers = {**JSON_HEADERS, "mcp-protocol-version": V, "mcp-method": method}
    if name is not None:
        headers["mcp-name"] = name
    return headers


async def test_subscription_gets_tools_list_changed() -> None:
    listen = request(
        "subscriptions/listen", id=5, notifications={"toolsListChanged": True}, _meta=META
    )
    grow = request("tools/call", id=6, name="grow", arguments={}, _meta=META)
    with trio.fail_after(20):
        async with serving(create_app(_server())) as base, httpx.AsyncClient() as client:
            headers = _modern("subscriptions/listen")
            async with raw_request(base, "POST", "/mcp", headers, listen) as stream:
                assert stream.status == 200
                acked, _ = await stream.read(stop=1)
                (ack,) = messages(acked)
                assert ack["method"] == "notifications/subscriptions/acknowledged"
                assert ack["params"]["notifications"] == {"toolsListChanged": True}
                r = await client.post(
                    base + "/mcp", content=grow, headers=_modern("tools/call", "grow")
                )
                assert r.status_code == 200
                changed, _ = await stream.read(stop=1)
            (message,) = messages(changed)
            assert message["method"] == "notifications/tools/list_changed"
            assert message["params"]["_meta"] == {"io.modelcontextprotocol/subscriptionId": 5}


async def test_get_stream_gets_tools_list_changed() -> None:
    with trio.fail_after(20):
        async with serving(create_app(_server())) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")
            get_headers = {**headers, "accept": "text/event-stream"}
            async with raw_request(base, "GET", "/mcp", get_headers) as stream:
                assert stream.status == 200
                r = await client.post(
                    base + "/mcp",
                    content=request("tools/call", id=2, name="grow", arguments={}),
                    headers=headers,
                )
                assert r.status_code == 200
                events, _ = await stream.read(stop=2)  # the priming event, then the change
            assert messages(events)[-1] == {
                "jsonrpc": "2.0",
                "method": "notifications/tools/list_changed",
            }
