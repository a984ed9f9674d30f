"""A runner that dies without a final message: the core answers, the session is freed.

The tool's exception cannot even be described (its ``__str__`` raises), so
turning it into an ``isError`` result fails and the runner dies. The adapter
reports that to the core (``OutgoingStream.abort``), which answers the
request with a JSON-RPC internal error and ends the stream, so the session
is idle again and can expire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import trio

from flowkit.mcp import INTERNAL_ERROR
from flowkit_http import MCPApp, MCPServer, Progress

from ._raw import call, initialize, messages, raw_request
from ._serving import serving


class Indescribable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no words")


def make_app() -> MCPApp:
    server = MCPServer("dies")

    @server.tool
    async def doomed() -> AsyncIterator[Progress]:
        """One step, then a failure nobody can describe."""
        yield Progress("one")
        raise Indescribable

    return MCPApp(server)


async def test_a_dead_runner_gets_the_cores_error_and_frees_the_session() -> None:
    app = make_app()
    with trio.fail_after(20):
        async with serving(app) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")
            async with raw_request(base, "POST", "/mcp", headers, call(5, "doomed", {})) as r:
                assert r.status == 200
                events, ended = await r.read()
            assert ended
            sent = messages(events)
            assert sent[0]["method"] == "notifications/progress"
            assert sent[-1] == {
                "jsonrpc": "2.0",
                "id": 5,
                "error": {
                    "code": INTERNAL_ERROR,
                    "message": "Internal error: the tool runner failed",
                },
            }
            session = app.endpoint.sessions.get_any(headers["mcp-session-id"])
            assert session is not None
            assert not session.busy
            assert app.statistics() == {}
