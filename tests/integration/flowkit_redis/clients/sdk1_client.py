"""The official MCP Python SDK 1.x client against ``flowkit serve --demo`` (its own venv).

Usage: python sdk1_client.py URL — prints one JSON line describing what it saw.
Run by tests/integration/flowkit_redis/test_serve.py through nginx round-robin.
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
        result = await session.call_tool("ticker", {"count": 50}, progress_callback=on_progress)
        words = await session.call_tool("analyze_document", {"text": "One. Two words."})
    print(
        json.dumps(
            {
                "protocol": init.protocolVersion,
                "tools": [tool.name for tool in tools.tools],
                "structured": result.structuredContent,
                "progress": progress,
                "words_is_error": words.isError,
            }
        )
    )


asyncio.run(main(sys.argv[1]))
