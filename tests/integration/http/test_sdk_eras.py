"""The official SDK 2.x client negotiates each era with flowkit on one endpoint.

``mode="auto"`` probes ``server/discover`` at the newest modern version and
adopts it when the server answers; ``mode="legacy"`` does the 2025-11-25
initialize handshake. Which era was negotiated is checked twice: by the
client's negotiated version, and by what the server saw on the wire (a thin
ASGI wrapper records each request's ``MCP-Protocol-Version``, ``Mcp-Method``
and ``Mcp-Session-Id`` headers).
"""

from __future__ import annotations

from typing import Any

import trio
from mcp import Client

from flowkit_http import MCPApp

from ._sdk import with_client
from ._serving import serving
from ._tools import make_server

Seen = list[dict[str, str]]


def recording(app: Any, seen: Seen) -> Any:
    """``app`` behind a wrapper that records the MCP headers of every HTTP request."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            wanted = {b"mcp-protocol-version", b"mcp-method", b"mcp-session-id"}
            seen.append(
                {
                    "method": scope["method"],
                    **{k.decode(): v.decode() for k, v in scope["headers"] if k in wanted},
                }
            )
        await app(scope, receive, send)

    return wrapper


async def _call_ticker(client: Client, count: int) -> tuple[str, Any, list[float]]:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    result = await client.call_tool("ticker", {"count": count}, progress_callback=on_progress)
    return client.protocol_version, result, progress


async def test_auto_mode_negotiates_the_modern_era_and_streams_progress() -> None:
    server, _ = make_server()
    seen: Seen = []

    async def body(client: Client) -> tuple[str, Any, list[float]]:
        return await _call_ticker(client, 25)

    with trio.fail_after(20):
        async with serving(recording(MCPApp(server), seen)) as url:
            version, result, progress = await with_client(url + "/mcp", body, mode="auto")
    assert version == "2026-07-28"
    assert not result.is_error
    assert result.structured_content == {"count": 25}
    assert progress == list(range(1, 26))  # every progress callback, in order
    # On the wire: discover first, no initialize, no session; every POST is modern.
    posts = [s for s in seen if s["method"] == "POST"]
    assert [s.get("mcp-method") for s in posts][:1] == ["server/discover"]
    assert "initialize" not in [s.get("mcp-method") for s in posts]
    assert "tools/call" in [s.get("mcp-method") for s in posts]
    assert all(s.get("mcp-protocol-version") == "2026-07-28" for s in posts)
    assert not any("mcp-session-id" in s for s in seen)


async def test_legacy_mode_still_does_the_handshake() -> None:
    server, _ = make_server()
    seen: Seen = []

    async def body(client: Client) -> tuple[str, Any, list[float]]:
        return await _call_ticker(client, 10)

    with trio.fail_after(20):
        async with serving(recording(MCPApp(server), seen)) as url:
            version, result, progress = await with_client(url + "/mcp", body, mode="legacy")
    assert version == "2025-11-25"
    assert result.structured_content == {"count": 10}
    assert progress == list(range(1, 11))
    # On the wire: the first request is the initialize (no version header yet);
    # everything after it carries the session and the handshake-era version.
    assert "mcp-protocol-version" not in seen[0]
    later = [s for s in seen[1:] if s["method"] == "POST"]
    assert later
    assert all(s.get("mcp-protocol-version") == "2025-11-25" for s in later)
    assert all("mcp-session-id" in s for s in later)
