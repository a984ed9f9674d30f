"""The server the stdio tests launch: ``flowkit serve --stdio tests.integration.stdio._target:server``.

The tools say what they did on stderr (with ``print``, which must land there,
never in the protocol stream), so a test can tell how far a tool got while it
is not reading stdout.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import trio
import trio.lowlevel

from flowkit.mcp import EndpointConfig, ToolContext
from flowkit_http import MCPServer, Partial, Progress, Result
from flowkit_http._demo import analyze_document, ticker

server = MCPServer(name="stdio-test", config=EndpointConfig(tools_list_changed=True))
server.tool(ticker)
server.tool(analyze_document)


@server.tool
async def boom(after: int = 1) -> AsyncIterator[int]:
    """Fail after a few items."""
    for i in range(after):
        yield i
    raise RuntimeError("the sensor caught fire")


@server.tool
async def noisy(count: int) -> AsyncIterator[int]:
    """Print to stdout in every way a tool might; none of it may reach the protocol."""
    for i in range(1, count + 1):
        print(f"print {i}")
        os.write(1, f"fd1 {i}\n".encode())
        yield i


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
async def flood(count: int, size: int = 1000) -> AsyncIterator[Progress]:
    """Lossless: ``count`` progress notifications of ``size`` bytes, as fast as possible."""
    pad = "x" * size
    for i in range(1, count + 1):
        yield Progress(pad, progress=i, total=count)
    print("flood produced everything", flush=True)


@server.tool(policy="conflate")
async def chatty(count: int, size: int = 1000) -> AsyncIterator[Any]:
    """Conflate: logs and progress as fast as possible, never waiting for the client."""
    pad = "x" * size
    for i in range(1, count + 1):
        yield Partial({"i": i, "pad": pad}, message=f"item {i}", total=count)
        if i % 256 == 0:
            await trio.lowlevel.checkpoint()
    print("chatty produced everything", flush=True)
    yield Result(structured={"count": count})


@server.tool
async def grow(name: str) -> dict[str, Any]:
    """Add a tool called ``name`` (the tool list changes while serving)."""

    async def added() -> str:
        return name

    added.__name__ = name
    server.tool(added)
    return {"added": name}


@server.tool
async def quick() -> dict[str, Any]:
    """Answer at once."""
    return {"ok": True}


@server.resource("notes://{day}", mime_type="text/plain")
async def note(day: str) -> str:
    """A resource template read over stdio (an Invoke action, run in its own task)."""
    await trio.lowlevel.checkpoint()
    return f"note of {day}"


@server.tool
async def ask_name(ctx: ToolContext) -> str:
    """Asks the user over the same channel (elicitation; the SDK client answers)."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    answer = await ctx.elicit("Your name?", schema)
    roots = await ctx.list_roots()
    return f"{answer.action}: {(answer.content or {}).get('name')} in {roots[0].uri}"
