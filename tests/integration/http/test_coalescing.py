"""A fast tool's events go out in few large writes, every one of them in order.

A plain async-generator tool runs through ``open_pipeline`` and the runner
takes its items a chunk at a time, flushing the outbox once per chunk; the
writer sends everything ready as one ``http.response.body``. So a generator
that never suspends costs one socket write per chunk, not per event.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from flowkit_http import MCPApp

from ._raw import call, initialize, messages, raw_request
from ._serving import serving
from ._tools import make_server


async def test_fast_generator_events_are_coalesced_into_few_writes() -> None:
    server, _ = make_server()
    app = MCPApp(server)
    bodies: list[int] = []

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return

        async def counted_send(message: Any) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                bodies.append(message["body"].count(b"\n\n"))
            await send(message)

        await app(scope, receive, counted_send)

    count = 5000
    with trio.fail_after(30):
        async with serving(counting) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")
            bodies.clear()
            async with raw_request(
                base, "POST", "/mcp", headers, call(1, "ticker", {"count": count})
            ) as response:
                events, ended = await response.read()
    assert ended
    sent = messages(events)
    progress = [m["params"]["progress"] for m in sent if "params" in m]
    assert progress == list(range(1, count + 1))
    assert sent[-1]["result"]["structuredContent"] == {"count": count}
    # priming event + count progress + the result, in (far) fewer writes than events
    assert sum(bodies) == count + 2
    assert len(bodies) <= count // 16, f"{len(bodies)} writes for {count} events"
