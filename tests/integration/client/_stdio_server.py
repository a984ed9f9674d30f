"""The flowkit server the client's stdio tests launch (a real subprocess)::

    python -m flowkit_http serve --stdio tests.integration.client._stdio_server:server

Its tools say on stderr what happened to them (``print`` lands there on
stdio), so a test can tell a cancelled call from one ended by shutdown.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import trio

from flowkit_http import MCPServer, Progress
from flowkit_http._demo import ticker

server = MCPServer(name="client-stdio-test")
server.tool(ticker)


@server.tool
async def forever(interval_ms: int = 5) -> AsyncIterator[Progress]:
    """Tick until cancelled; says so on stderr when its pipeline stops."""
    steps = 0
    try:
        while True:
            steps += 1
            yield Progress(f"step {steps}")
            await trio.sleep(interval_ms / 1000)
    finally:
        print(f"forever stopped after {steps}", flush=True)


@server.tool
async def die(status: int = 3) -> AsyncIterator[Progress]:
    """Start, then end the whole server process with ``status`` (no response, ever)."""
    yield Progress("about to die", progress=1)
    os._exit(status)


@server.tool
async def flood(count: int, size: int = 2000) -> AsyncIterator[Progress]:
    """Lossless: ``count`` progress steps of ``size`` bytes as fast as the pipe takes them."""
    pad = "x" * size
    for i in range(1, count + 1):
        yield Progress(pad, progress=i, total=count)
    print("flood produced everything", flush=True)


@server.tool
async def quick() -> dict[str, Any]:
    """Answer at once."""
    return {"ok": True}
