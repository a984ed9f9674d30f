"""The benchmark tools on FastMCP 4.x, the second peer, run by FastMCP's own venv.

Run as a child process by the benchmarks, with the Python of ``.cache/fastmcp``
(FastMCP pins its own ``mcp`` and server stack, so it never shares the dev venv;
``benchmarks._servers.fastmcp_python`` creates that venv on first use)::

    .cache/fastmcp/bin/python -m benchmarks._fastmcp --port 8102
    .cache/fastmcp/bin/python -m benchmarks._fastmcp --stdio

It is ``FastMCP.run("http")`` (Streamable HTTP on uvicorn, FastMCP's defaults)
with the port from the command line and access logs off, as for the official
server. The tools are ``benchmarks._official``'s, same names, arguments and
semantics (``ticker`` drift-free at ``interval_ms``, ``fast_logs``, ``hold``,
``echo``), so the same load client drives all three servers.

This module imports nothing from the dev venv: only FastMCP and anyio.
"""

from __future__ import annotations

import argparse
import gc

import anyio
from fastmcp import Context, FastMCP

server = FastMCP("fastmcp-bench")


@server.tool
async def ticker(count: int, ctx: Context, interval_ms: int = 0) -> dict[str, int]:
    """Emit `count` progress notifications, `interval_ms` apart."""
    start = anyio.current_time()
    for i in range(1, count + 1):
        if interval_ms > 0:
            await anyio.sleep_until(start + i * interval_ms / 1000)
        await ctx.report_progress(i, count, f"tick {i}/{count}")
    return {"count": count}


@server.tool
async def fast_logs(count: int, ctx: Context) -> dict[str, int]:
    """`count` partial results as fast as possible: a log and a progress step each."""
    for i in range(1, count + 1):
        await ctx.log(f"item {i}", level="info", extra={"i": i})
        await ctx.report_progress(i, count, f"item {i}")
    return {"count": count}


@server.tool
async def hold(seconds: float) -> dict[str, float]:
    """Hold the call open for `seconds`, sending nothing."""
    await anyio.sleep(seconds)
    return {"held": seconds}


@server.tool
async def echo(text: str) -> str:
    """Return `text`."""
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout instead")
    args = parser.parse_args()
    gc.collect()
    if args.stdio:
        server.run("stdio", show_banner=False)
        return
    server.run(
        "http",
        host=args.host,
        port=args.port,
        path="/mcp",
        show_banner=False,
        log_level="warning",
        uvicorn_config={"access_log": False},
    )


if __name__ == "__main__":
    main()
