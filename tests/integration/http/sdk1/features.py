"""Resources, prompts and completion through the official MCP Python SDK 1.x client.

Usage: python features.py URL — prints one JSON line describing what it saw
(run in the 1.x virtual environment, as client.py is).
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError
from mcp.types import PromptReference, ResourceTemplateReference


async def main(url: str) -> None:
    async with (
        streamablehttp_client(url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        init = await session.initialize()
        resources = await session.list_resources()
        templates = await session.list_resource_templates()
        text = await session.read_resource("memo://today")
        templated = await session.read_resource("memo://days/mon")
        try:
            await session.read_resource("memo://days/sun")
            missing = None
        except McpError as exc:
            missing = exc.error.code
        await session.subscribe_resource("memo://today")
        await session.unsubscribe_resource("memo://today")
        prompt = await session.get_prompt("reply", {"message": "hi"})
        completed = await session.complete(
            ResourceTemplateReference(type="ref/resource", uri="memo://days/{day}"),
            {"name": "day", "value": "m"},
        )
        prompt_completed = await session.complete(
            PromptReference(type="ref/prompt", name="reply"), {"name": "tone", "value": "fu"}
        )
    print(
        json.dumps(
            {
                "capabilities": init.capabilities.model_dump(exclude_none=True),
                "resources": [str(r.uri) for r in resources.resources],
                "templates": [t.uriTemplate for t in templates.resourceTemplates],
                "text": text.contents[0].text,
                "templated": templated.contents[0].text,
                "missing": missing,
                "prompt": prompt.messages[0].content.text,
                "completed": completed.completion.values,
                "prompt_completed": prompt_completed.completion.values,
            }
        )
    )


asyncio.run(main(sys.argv[1]))
