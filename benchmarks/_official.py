"""The benchmark tools on the official MCP Python SDK server (the peer to beat).

Run as a child process by the benchmarks::

    python -m benchmarks._official --port 8101
    python -m benchmarks._official --stdio     # MCPServer.run("stdio") instead

It is the SDK's ``MCPServer`` over Streamable HTTP served by uvicorn, exactly
as ``MCPServer.run("streamable-http")`` does it (same app factory, same
uvicorn config), except that the port comes from the command line and access
logs are off (as they would be for any benchmark). The tools match flowkit's
demo semantics:

* ``ticker(count, interval_ms=0)`` — as flowkit's demo: tick ``i`` due at
  ``start + i x interval_ms`` (no drift), ``count`` progress notifications
  ``1..count`` (``total=count``, message ``tick i/count``); result
  ``{"count": count}``.
* ``fast_logs(count)`` — as flowkit's bench tool: a ``notifications/message``
  (``data={"i": i}``) and a progress step per item, as fast as it goes
  (the SDK has no delivery policies: this is its only, lossless, behaviour).
* ``hold(seconds)`` — sends nothing, returns after ``seconds`` (an idle open
  tool-call stream).
* ``echo(text)`` — a cheap call.
"""

from __future__ import annotations

import argparse
import gc
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

server: MCPServer[Any] = MCPServer("official-bench")


@server.tool()
async def ticker(count: int, ctx: Context, interval_ms: int = 0) -> dict[str, int]:
    """Emit `count` progress notifications, `interval_ms` apart."""
    start = anyio.current_time()
    for i in range(1, count + 1):
        if interval_ms > 0:
            await anyio.sleep_until(start + i * interval_ms / 1000)
        await ctx.report_progress(i, count, f"tick {i}/{count}")
    return {"count": count}


@server.tool()
async def fast_logs(count: int, ctx: Context) -> dict[str, int]:
    """`count` partial results as fast as possible: a log and a progress step each."""
    for i in range(1, count + 1):
        await ctx.log("info", {"i": i})
        await ctx.report_progress(i, count, f"item {i}")
    return {"count": count}


@server.tool()
async def hold(seconds: float) -> dict[str, float]:
    """Hold the call open for `seconds`, sending nothing."""
    await anyio.sleep(seconds)
    return {"held": seconds}


@server.tool()
async def echo(text: str) -> str:
    """Return `text`."""
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout instead")
    args = parser.parse_args()
    if args.stdio:
        server.run("stdio")  # the SDK's own stdio transport
        return
    app = server.streamable_http_app(host=args.host)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", access_log=False
    )
    gc.collect()
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
