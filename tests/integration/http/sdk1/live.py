"""A live resource through the official MCP Python SDK 1.x client: subscribe, updated, read.

Usage: python live.py URL URI — prints one JSON line describing what it saw
(run in the 1.x virtual environment, as client.py is). The server's
``publish`` tool feeds the live resource's pipeline.
"""

import asyncio
import json
import sys

import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main(url: str, uri: str) -> None:
    updated = asyncio.Event()
    updates: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ResourceUpdatedNotification
        ):
            updates.append(str(message.root.params.uri))
            updated.set()

    async with (
        streamablehttp_client(url) as (read, write, _),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        await session.call_tool("publish", {"celsius": 20.0})
        first = await session.read_resource(uri)
        await session.subscribe_resource(uri)
        # The GET stream opens in the background: publish until an update arrives on it.
        celsius = 21.0
        while not updated.is_set():
            await session.call_tool("publish", {"celsius": celsius})
            try:
                await asyncio.wait_for(updated.wait(), 0.5)
            except TimeoutError:
                celsius += 1
        newest = await session.read_resource(uri)
        await session.unsubscribe_resource(uri)
    print(
        json.dumps(
            {
                "first": json.loads(first.contents[0].text),
                "newest": json.loads(newest.contents[0].text),
                "published": celsius,
                "updates": sorted(set(updates)),
            }
        )
    )


asyncio.run(main(sys.argv[1], sys.argv[2]))
