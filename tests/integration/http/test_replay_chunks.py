"""A replay is written in bounded chunks, each awaited, never joined into one buffer.

Issue 20: each resume joined the whole replay into one copy, so four resumers
that never read held four copies of every stored event. In-process ASGI: a
``ticker`` call's 2,000 events (~330 KB with its 200-character progress
token) are stored; a resume after the priming event gets them back in writes
of at most 64 KiB (plus one event), in order, byte for byte.
"""

from __future__ import annotations

from typing import Any

import orjson
import trio

from flowkit_http import MCPApp

from ._raw import ACCEPT, call, request
from ._tools import make_server

COUNT = 990  # under the store's 1,000 events per stream: all are kept
TOKEN = "t" * 200


async def _asgi(
    app: MCPApp, method: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[bytes, bytes], list[bytes]]:
    scope: dict[str, Any] = {"type": "http", "method": method, "path": "/mcp", "headers": headers}
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    bodies = [m["body"] for m in sent[1:] if m.get("body")]
    return sent[0]["status"], dict(sent[0]["headers"]), bodies


async def test_a_long_replay_goes_out_in_bounded_chunks_in_order() -> None:
    server, _ = make_server()
    app = MCPApp(server)
    base = [(b"host", b"127.0.0.1:8000"), (b"accept", ACCEPT.encode())]
    post = [*base, (b"content-type", b"application/json")]
    with trio.fail_after(30):
        async with app.running():
            init = request(
                "initialize",
                protocolVersion="2025-11-25",
                capabilities={},
                clientInfo={"name": "replay", "version": "0"},
            )
            status, headers, _ = await _asgi(app, "POST", post, init)
            assert status == 200
            session = [
                (b"mcp-session-id", headers[b"mcp-session-id"]),
                (b"mcp-protocol-version", b"2025-11-25"),
            ]
            status, _, live = await _asgi(
                app, "POST", [*post, *session], call(1, "ticker", {"count": COUNT}, token=TOKEN)
            )
            assert status == 200
            stream = b"".join(live)
            priming, _, rest = stream.partition(b"\n\n")
            event_id = priming.split(b"id: ")[1].split(b"\n")[0]
            get = [(b"host", b"127.0.0.1:8000"), (b"accept", b"text/event-stream"), *session]
            status, _, chunks = await _asgi(app, "GET", [*get, (b"last-event-id", event_id)])
    assert status == 200
    assert b"".join(chunks) == rest  # every event after the priming one, in order
    assert len(rest) > 300_000
    largest_event = max(len(e) for e in rest.split(b"\n\n"))
    assert max(len(c) for c in chunks) <= 64 * 1024 + largest_event
    assert len(chunks) >= len(rest) // (64 * 1024)
    assert orjson.loads(rest.rsplit(b"data: ", 1)[1])["result"]["structuredContent"] == {
        "count": COUNT
    }
