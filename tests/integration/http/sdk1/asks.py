"""A 1.x SDK client that answers a tool's elicitation, sampling and roots requests.

Usage: python asks.py URL — prints one JSON line with the tool's result text.
"""

import asyncio
import json
import sys

from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client


async def on_elicit(context, params):
    return types.ElicitResult(action="accept", content={"name": "Grace", "nights": 3})


async def on_sample(context, params):
    text = params.messages[0].content.text
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"<{text}>"),
        model="sdk1-model",
        stopReason="endTurn",
    )


async def on_roots(context):
    return types.ListRootsResult(roots=[types.Root(uri="file:///srv/data", name="data")])


async def main(url: str) -> None:
    async with (
        streamablehttp_client(url) as (read, write, _),
        ClientSession(
            read,
            write,
            elicitation_callback=on_elicit,
            sampling_callback=on_sample,
            list_roots_callback=on_roots,
        ) as session,
    ):
        init = await session.initialize()
        result = await session.call_tool("book", {"city": "Oslo"})
    print(
        json.dumps(
            {
                "protocol": init.protocolVersion,
                "is_error": result.isError,
                "text": result.content[0].text,
            }
        )
    )


asyncio.run(main(sys.argv[1]))
