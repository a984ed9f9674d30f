"""``flowkit serve`` holds a response head for its first event only when one follows at once.

``MCPApp`` marks a head ``MORE`` when the stream's first bytes (the priming
event, a replay) go right after it, so both leave in one write. A
2026-era call has no priming event: its head must go out alone and at
once, whatever the tool does next, or a client would wait for the head
until the tool's first event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from flowkit_http import MCPApp, MCPServer, Progress, StreamSettings

from ..http._raw import messages, raw_request
from ..http.test_disconnect_latency import stateless_call
from ._support import flowkit_serving


async def test_a_head_with_no_first_event_is_not_held_for_the_tools_first() -> None:
    # No keepalive within the test: one would flush a held head and hide it.
    server = MCPServer("hints", settings=StreamSettings(keepalive_interval=3600))
    go = trio.Event()

    @server.tool
    async def forever(trial: str) -> AsyncIterator[Progress]:
        """Its first event comes only when the test says so."""
        await go.wait()
        yield Progress("first")
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with flowkit_serving(MCPApp(server)) as base:
            headers, body = stateless_call("t")
            async with raw_request(base, "POST", "/mcp", headers, body) as response:
                assert response.status == 200  # the head came while the tool waits
                assert response.headers["content-type"].startswith("text/event-stream")
                go.set()
                events, ended = await response.read(stop=1)
                assert not ended
                assert [m["method"] for m in messages(events)] == ["notifications/progress"]
