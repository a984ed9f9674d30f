"""``flowkit serve --demo --redis URL`` adds ``tail_stream``: a live Redis stream for a client.

A real server process, a real redis-server, raw HTTP: the tool tails a
stream through ``flowkit.latest``, so a slow client gets the latest entries
and the result says how many it skipped. Without ``--redis`` the tool is not
there (``./dev demo`` needs no Redis).
"""

from __future__ import annotations

import httpx
import trio

from flowkit_redis import Keys, RedisClient

from ..http._raw import call, initialize, messages, request, sse_events
from ._fleet import flowkit_serve
from ._server import RedisServer
from .test_groups import feed


async def test_tail_stream_delivers_the_latest_to_a_slow_client_and_counts_the_rest(
    redis_server: RedisServer, client: RedisClient, keys: Keys
) -> None:
    stream = f"{keys.prefix}:live"
    await feed(client, stream, 300)
    with trio.fail_after(60):
        async with flowkit_serve(redis_server.url) as base, httpx.AsyncClient(timeout=30) as http:
            headers = await initialize(http, base + "/mcp")
            arguments = {"stream": stream, "count": 300, "after": "0", "consume_ms": 2}
            answer = await http.post(
                base + "/mcp", content=call(2, "tail_stream", arguments), headers=headers
            )
            assert answer.status_code == 200, answer.text
            seen = messages(sse_events(answer.content))
            result = seen[-1]["result"]["structuredContent"]
            assert result["entries"] == 300
            assert result["delivered"] + result["skipped"] == 300
            assert result["skipped"] > 0  # the slow client got the latest, not a backlog
            assert result["last"]["n"] == "299"  # the newest is never the one skipped
            bad = await http.post(
                base + "/mcp", content=call(3, "tail_stream", {"stream": ""}), headers=headers
            )
            error = messages(sse_events(bad.content))[-1]["result"]
            assert error["isError"] is True
            assert "stream must name a Redis stream" in error["content"][0]["text"]


async def test_without_redis_the_demo_has_no_tail_stream() -> None:
    with trio.fail_after(30):
        async with flowkit_serve(None) as base, httpx.AsyncClient() as http:
            headers = await initialize(http, base + "/mcp")
            listed = await http.post(
                base + "/mcp", content=request("tools/list", id=2), headers=headers
            )
            assert "tail_stream" not in [t["name"] for t in listed.json()["result"]["tools"]]
