"""A client written against the official MCP Python SDK 1.x, run in its own venv.

Usage: python client.py URL — prints one JSON line describing what it saw.
The 1.x and 2.x SDKs cannot share an environment, so the test runs this
script with an interpreter from a separate virtual environment.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main(url: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with (
        streamablehttp_client(url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        init = await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("ticker", {"count": 20}, progress_callback=on_progress)
        failed = await session.call_tool("boom", {"after": 1})
    print(
        json.dumps(
            {
                "protocol": init.protocolVersion,
                "tools": [tool.name for tool in tools.tools],
                "structured": result.structuredContent,
                "progress": progress,
                "boom_is_error": failed.isError,
            }
        )
    )


asyncio.run(main(sys.argv[1]))
