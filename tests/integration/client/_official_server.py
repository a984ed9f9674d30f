"""The official SDK server for the client's tests, with an event store (so it resumes).

Run as a child process (the SDK runs on anyio/asyncio under uvicorn, as
``MCPServer.run("streamable-http")`` does)::

    python -m tests.integration.client._official_server --port N
    python -m tests.integration.client._official_server --stdio   # MCPServer.run("stdio")

Tools: ``ticker`` (progress), ``chatty`` (logs), ``ask`` (elicitation),
``sample`` (sampling), ``roots`` (roots/list), and ``greet``, whose
elicitation is the SDK's ``Resolve(Elicit(...))``: a server request in
2025-11-25, an ``input_required`` result in 2026-07-28. The SDK resumes streams only with an event store; the
one here keeps every event in memory, which is all a test needs.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.types import JSONRPCMessage, SamplingMessage, TextContent
from pydantic import BaseModel

server: MCPServer[Any] = MCPServer("official-test")


class MemoryEventStore(EventStore):
    """Every event of every stream, in order."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._events: list[tuple[str, str, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        event_id = str(next(self._ids))
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        found = [i for i, (eid, _, _) in enumerate(self._events) if eid == last_event_id]
        if not found:
            return None
        stream = self._events[found[0]][1]
        for eid, sid, message in self._events[found[0] + 1 :]:
            if sid == stream and message is not None:
                await send_callback(EventMessage(message, eid))
        return stream


@server.tool()
async def ticker(count: int, ctx: Context) -> dict[str, int]:
    """`count` progress notifications, then the count."""
    for i in range(1, count + 1):
        await ctx.report_progress(i, count, f"tick {i}/{count}")
    return {"count": count}


@server.tool()
async def chatty(count: int, ctx: Context) -> dict[str, int]:
    """`count` info logs carrying {"i": i}."""
    for i in range(1, count + 1):
        await ctx.info({"i": i})
    return {"count": count}


class Name(BaseModel):
    name: str


@server.tool()
async def ask(ctx: Context) -> dict[str, Any]:
    """Elicit a name from the client."""
    answer = await ctx.elicit("What is your name?", schema=Name)
    return {
        "action": answer.action,
        "name": answer.data.name if answer.action == "accept" else None,
    }


def _ask_name() -> Elicit[Name]:
    return Elicit("What is your name?", Name)


@server.tool()
async def greet(who: Annotated[Name, Resolve(_ask_name)]) -> dict[str, str]:
    """Elicit a name in either era, then greet it."""
    return {"greeting": f"hello {who.name}"}


@server.tool()
async def sample(ctx: Context) -> str:
    """Ask the client's model to complete a prompt."""
    reply = await ctx.session.create_message(
        [SamplingMessage(role="user", content=TextContent(type="text", text="Say hi"))],
        max_tokens=10,
        related_request_id=ctx.request_id,
    )
    content = reply.content
    return content.text if isinstance(content, TextContent) else str(content)


@server.tool()
async def roots(ctx: Context) -> dict[str, list[str]]:
    """The URIs of the client's roots (``roots/list``)."""
    listed = await ctx.session.list_roots()
    return {"uris": [str(root.uri) for root in listed.roots]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--stdio", action="store_true", help="serve on stdin/stdout instead")
    args = parser.parse_args()
    if args.stdio:
        server.run("stdio")
        return
    app = server.streamable_http_app(event_store=MemoryEventStore(), retry_interval=10)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
