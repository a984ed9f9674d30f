"""``MCPApp.statistics()`` has one entry per running call, whoever runs it.

Stateless-era (2026-07-28) clients have no session, and two may use the same
request id at the same time: each call still gets its own entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from flowkit_http import MCPApp, MCPServer, Progress

from ._raw import JSON_HEADERS, messages, raw_request, request
from ._serving import serving

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "progressToken": "p",
}
HEADERS = {
    **JSON_HEADERS,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "held",
}


async def test_two_stateless_calls_with_one_request_id_are_two_entries() -> None:
    release = trio.Event()
    server = MCPServer("stats")

    @server.tool
    async def held() -> AsyncIterator[Progress]:
        """One step, then wait for the test."""
        yield Progress("started")
        await release.wait()

    app = MCPApp(server)
    body = request("tools/call", id=1, name="held", arguments={}, _meta=META)
    with trio.fail_after(20):
        async with (
            serving(app) as base,
            raw_request(base, "POST", "/mcp", HEADERS, body) as first,
            raw_request(base, "POST", "/mcp", HEADERS, body) as second,
        ):
            assert (first.status, second.status) == (200, 200)
            for response in (first, second):
                started, _ = await response.read(1)  # its call is running
                assert messages(started)[-1]["method"] == "notifications/progress"
            keys = list(app.statistics())
            assert [(k.session_id, k.request_id) for k in keys] == [(None, 1), (None, 1)]
            assert keys[0] != keys[1]
            release.set()
            for response in (first, second):
                events, ended = await response.read()
                assert ended
                assert messages(events)[-1]["result"]["structuredContent"] == {"items": 1}
