"""A FastMCP server for the client's tests, run by the FastMCP venv's Python::

    .cache/fastmcp/bin/python tests/integration/client/peers/fastmcp_server.py --port N
    .cache/fastmcp/bin/python tests/integration/client/peers/fastmcp_server.py --stdio

FastMCP pins its own ``mcp``, so it lives in a venv of its own (see
``tests/integration/client/test_fastmcp.py``), never in the dev venv. Tools: ``ticker``
(progress) and ``chatty`` (info logs), as the official server's.
"""

from __future__ import annotations

import argparse

from fastmcp import Context, FastMCP

server = FastMCP("fastmcp-test")


@server.tool
async def ticker(count: int, ctx: Context) -> dict[str, int]:
    """`count` progress notifications, then the count."""
    for i in range(1, count + 1):
        await ctx.report_progress(i, count, f"tick {i}/{count}")
    return {"count": count}


@server.tool
async def chatty(count: int, ctx: Context) -> dict[str, int]:
    """`count` info logs, "line 1" to "line count"."""
    for i in range(1, count + 1):
        await ctx.info(f"line {i}")
    return {"count": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--stdio", action="store_true")
    args = parser.parse_args()
    if args.stdio:
        server.run("stdio", show_banner=False)
    else:
        server.run("http", host="127.0.0.1", port=args.port, show_banner=False, log_level="warning")


if __name__ == "__main__":
    main()
