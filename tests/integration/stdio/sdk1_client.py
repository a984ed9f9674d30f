"""A client written against the official MCP Python SDK 1.x stdio transport.

Usage: python sdk1_client.py PYTHON TARGET — launches ``PYTHON -m flowkit_http
serve --stdio TARGET`` and prints one JSON line describing what it saw. It
runs with the interpreter of the separate 1.x virtual environment.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(python: str, target: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    params = StdioServerParameters(
        command=python, args=["-m", "flowkit_http", "serve", "--stdio", target]
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("ticker", {"count": 20}, progress_callback=on_progress)
        noisy = await session.call_tool("noisy", {"count": 3})
        failed = await session.call_tool("boom", {"after": 1})
    print(
        json.dumps(
            {
                "protocol": init.protocolVersion,
                "tools": [tool.name for tool in tools.tools],
                "structured": result.structuredContent,
                "progress": progress,
                "noisy_is_error": noisy.isError,
                "boom_is_error": failed.isError,
            }
        )
    )


asyncio.run(main(sys.argv[1], sys.argv[2]))
