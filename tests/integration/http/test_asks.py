"""Tools that ask their client (elicitation, sampling, roots) through the official SDK 2.x client.

The same tools are served in both eras: on the handshake era's call stream
(2025-11-25, the answer comes back by POST) and through input-required
results replayed from a sealed ``requestState`` (2026-07-28, SEP-2322).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from mcp import Client, types

from flowkit.mcp import ClientRequestError, EndpointConfig, ToolContext
from flowkit_http import MCPServer, create_app

from ._raw import JSON_HEADERS, call, last_event_id, messages, raw_request, request
from ._sdk import with_client
from ._serving import serving
from .test_sdk1_client import sdk1_python  # noqa: F401 (the fixture)

SDK1_ASKS = Path(__file__).parent / "sdk1" / "asks.py"

FORM = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "default": "Ada"},
        "nights": {"type": "integer", "minimum": 1, "default": 2},
        "room": {"type": "string", "enum": ["single", "double"], "default": "double"},
    },
    "required": ["name"],
}


async def booking(city: str, ctx: ToolContext) -> str:
    """``book``'s three questions: the user (elicitation), the LLM (sampling), the roots."""
    answer = await ctx.elicit(f"Booking in {city}: who and how long?", FORM)
    if not answer.accepted:
        return f"booking {answer.action}ed"
    assert answer.content is not None
    summary = await ctx.sample(
        f"Summarise a stay of {answer.content['nights']} nights", max_tokens=50
    )
    roots = await ctx.list_roots()
    return f"{answer.content['name']}: {summary.text} [{', '.join(r.uri for r in roots)}]"


def make_server(**config: Any) -> tuple[MCPServer, list[int]]:
    server = MCPServer("asks", config=EndpointConfig(**config))
    runs: list[int] = []  # the round of every run of `book`, to see the replay

    @server.tool
    async def book(city: str, ctx: ToolContext) -> str:
        """Ask the user, then the LLM, then the roots."""
        runs.append(ctx.round)
        return await booking(city, ctx)

    @server.tool
    async def who(ctx: ToolContext) -> dict[str, Any]:
        """What the context knows about the caller."""
        return {
            "principal": ctx.principal,
            "elicitation": ctx.supports("elicitation"),
            "sampling": ctx.supports("sampling"),
            "version": ctx.protocol_version,
        }

    @server.tool
    async def greet(ctx: ToolContext) -> str:
        """One question."""
        answer = await ctx.elicit("Name?", FORM)
        return f"Hello, {(answer.content or {}).get('name')}!"

    @server.tool
    async def fragile(ctx: ToolContext) -> str:
        """Reports what went wrong asking."""
        try:
            await ctx.sample("hello", max_tokens=5)
        except ClientRequestError as exc:
            return f"{type(exc).__name__}: {exc}"
        return "sampled"

    return server, runs


async def on_elicit(context: Any, params: Any) -> types.ElicitResult:
    assert params.requested_schema["properties"]["nights"]["default"] == 2  # SEP-1034
    return types.ElicitResult(action="accept", content={"name": "Grace", "nights": 3})


async def on_sample(context: Any, params: types.CreateMessageRequestParams) -> Any:
    assert params.max_tokens == 50
    text = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"<{text}>"),
        model="test-model",
        stop_reason="endTurn",
    )


async def on_roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///srv/data", name="data")])


CALLBACKS = {
    "elicitation_callback": on_elicit,
    "sampling_callback": on_sample,
    "list_roots_callback": on_roots,
}
EXPECTED = "Grace: <Summarise a stay of 3 nights> [file:///srv/data]"


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_elicit_sample_and_roots_answered_by_the_sdk_client(mode: str) -> None:
    server, runs = make_server()

    async def body(client: Client) -> types.CallToolResult:
        return await client.call_tool("book", {"city": "Oslo"})

    with trio.fail_after(30):
        async with serving(create_app(server)) as url:
            result = await with_client(url + "/mcp", body, mode=mode, **CALLBACKS)
    assert not result.is_error, result
    assert _text(result) == EXPECTED
    if mode == "legacy":
        assert runs == [0]  # one run, waiting on the stream for each answer
    else:
        assert runs == [0, 1, 2, 3]  # replayed from the start each round


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_context_never_in_the_schema_and_knows_the_caller(mode: str) -> None:
    server, _ = make_server()

    async def body(client: Client) -> Any:
        tools = await client.list_tools()
        return tools, await client.call_tool("who", {})

    with trio.fail_after(30):
        async with serving(create_app(server)) as url:
            tools, result = await with_client(
                url + "/mcp", body, mode=mode, elicitation_callback=on_elicit
            )
    schemas = {t.name: t.input_schema for t in tools.tools}
    assert schemas["who"]["properties"] == {}
    assert schemas["book"]["required"] == ["city"]
    assert result.structured_content == {
        "principal": None,
        "elicitation": True,
        "sampling": False,
        "version": "2025-11-25" if mode == "legacy" else "2026-07-28",
    }


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_undeclared_capability_is_refused_before_anything_is_sent(mode: str) -> None:
    server, _ = make_server()

    async def body(client: Client) -> types.CallToolResult:
        return await client.call_tool("fragile", {})

    with trio.fail_after(30):
        async with serving(create_app(server)) as url:
            result = await with_client(url + "/mcp", body, mode=mode)
    assert _text(result) == (
        "MissingClientCapability: cannot send sampling/createMessage: "
        "the client did not declare the sampling capability"
    )


async def test_a_client_error_reaches_the_tool() -> None:
    server, _ = make_server()

    async def refuse(context: Any, params: Any) -> types.ErrorData:
        return types.ErrorData(code=-1, message="User rejected sampling request")

    async def body(client: Client) -> types.CallToolResult:
        return await client.call_tool("fragile", {})

    with trio.fail_after(30):
        async with serving(create_app(server)) as url:
            result = await with_client(url + "/mcp", body, sampling_callback=refuse)
    assert _text(result) == "ClientRequestError: User rejected sampling request"


async def test_the_sdk1_client_answers_elicitation_sampling_and_roots(
    sdk1_python: Path,  # noqa: F811 (the fixture)
) -> None:
    server, runs = make_server()
    with trio.fail_after(120):
        async with serving(create_app(server)) as url:
            done = await trio.run_process(
                [str(sdk1_python), str(SDK1_ASKS), url + "/mcp"], capture_stdout=True
            )
    seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert seen == {"protocol": "2025-11-25", "is_error": False, "text": EXPECTED}
    assert runs == [0]


async def _raw_session(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    body = request(
        "initialize",
        protocolVersion="2025-11-25",
        capabilities={"elicitation": {}},
        clientInfo={"name": "raw", "version": "0"},
    )
    response = await client.post(url, content=body, headers=JSON_HEADERS)
    headers = {
        **JSON_HEADERS,
        "mcp-session-id": response.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    await client.post(url, content=request("notifications/initialized", id=None), headers=headers)
    return headers


async def test_a_client_that_hung_up_still_answers_and_resumes_the_result() -> None:
    """2025-11-25: a disconnect is not a cancel; the question waits in the event store."""
    server, _ = make_server()
    accept = {"action": "accept", "content": {"name": "Lin"}}
    with trio.fail_after(30):
        async with serving(create_app(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await _raw_session(client, url)
            other = await _raw_session(client, url)
            async with raw_request(base, "POST", "/mcp", headers, call(1, "greet", {})) as response:
                events, _ = await response.read(stop=2)  # the priming event, the question
            [question] = [m for m in messages(events) if m.get("method") == "elicitation/create"]
            assert question["params"]["requestedSchema"] == FORM
            answer = orjson.dumps({"jsonrpc": "2.0", "id": question["id"], "result": accept})
            # Another session cannot answer it; its POST is accepted and ignored.
            stolen = await client.post(url, content=answer, headers=other)
            assert (stolen.status_code, stolen.text) == (202, "")
            posted = await client.post(url, content=answer, headers=headers)
            assert (posted.status_code, posted.text) == (202, "")
            twice = await client.post(url, content=answer, headers=headers)
            assert (twice.status_code, twice.text) == (202, "")  # ignored too
            resume = {**headers, "accept": "text/event-stream"}
            resume["last-event-id"] = last_event_id(events)
            while True:
                async with raw_request(base, "GET", "/mcp", resume) as response:
                    if response.status == 409:  # the hang-up not seen by the server yet
                        await trio.sleep(0.01)
                        continue
                    tail, ended = await response.read()
                    break
    assert ended
    [final] = messages(tail)
    assert final["id"] == 1
    assert final["result"]["content"][0]["text"] == "Hello, Lin!"


@pytest.mark.parametrize("era", ["2025-11-25", "2026-07-28"])
async def test_flowkits_own_client_answers_in_both_eras(era: Any) -> None:
    from flowkit_client import open_client

    server, runs = make_server()
    asked: list[str] = []

    async def elicit(params: Any) -> dict[str, Any]:
        asked.append(params["mode"])
        return {"action": "accept", "content": {"name": "Grace", "nights": 3}}

    async def sample(params: Any) -> dict[str, Any]:
        text = params["messages"][0]["content"]["text"]
        content = {"type": "text", "text": f"<{text}>"}
        return {"role": "assistant", "content": content, "model": "m"}

    async def roots(params: Any) -> dict[str, Any]:
        return {"roots": [{"uri": "file:///srv/data"}]}

    with trio.fail_after(30):
        async with (
            serving(create_app(server)) as url,
            open_client(
                url + "/mcp", era=era, on_elicitation=elicit, on_sampling=sample, on_roots=roots
            ) as client,
            client.call_tool("book", {"city": "Oslo"}) as call,
        ):
            result = await call.result()
    assert result.content[0]["text"] == EXPECTED
    assert asked == ["form"]
    assert runs == ([0] if era == "2025-11-25" else [0, 1, 2, 3])
