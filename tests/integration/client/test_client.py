"""The client against a real flowkit server (hypercorn on 127.0.0.1), both eras."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from flowkit.mcp import Tool
from flowkit_client import (
    CallTimeout,
    Client,
    ConnectError,
    HTTPStatusError,
    LogMessage,
    Progress,
    ReadTimeout,
    RPCError,
    Timeouts,
    ToolError,
    ToolResult,
    open_client,
)
from flowkit_http import create_app

from ..http._serving import serving
from ..http._tools import Probe, make_server

ERAS = ["2026-07-28", "2025-11-25"]


@asynccontextmanager
async def connected(era: str = "auto", **options: object) -> AsyncIterator[tuple[Client, Probe]]:
    server, probe = make_server()
    async with (
        serving(create_app(server, "/mcp")) as base,
        open_client(
            base + "/mcp",
            era=era,
            **options,  # type: ignore[arg-type]
        ) as client,
    ):
        yield client, probe


async def test_auto_negotiates_the_stateless_era_through_server_discover() -> None:
    async with connected() as (client, _):
        assert client.server.protocol_version == "2026-07-28"
        assert client.server.name == "test"
        assert client._session_id is None
        assert {tool.name for tool in await client.list_tools()} >= {"ticker", "forever"}


async def test_the_handshake_era_opens_a_session() -> None:
    async with connected("2025-11-25") as (client, _):
        assert client.server.protocol_version == "2025-11-25"
        assert client._session_id
        await client.ping()
        assert "logging" in client.server.capabilities


@pytest.mark.parametrize("era", ERAS)
async def test_a_call_is_a_stream_of_progress_then_the_result(era: str) -> None:
    async with connected(era) as (client, _), client.call_tool("ticker", {"count": 3}) as call:
        events = [event async for event in call]
        assert await call.result() is events[-1]
    assert events[:3] == [Progress(i, 3, f"tick {i}/3") for i in (1, 2, 3)]
    result = events[3]
    assert isinstance(result, ToolResult)
    assert result.structured == {"count": 3}
    assert "ticked 3 times" in result.text
    assert not result.is_error


@pytest.mark.parametrize("era", ERAS)
async def test_partial_results_arrive_as_logs_by_default(era: str) -> None:
    async with connected(era) as (client, _), client.call_tool("chatty", {"count": 3}) as call:
        logs = [event async for event in call if isinstance(event, LogMessage)]
    assert [log.data for log in logs] == [{"i": 1}, {"i": 2}, {"i": 3}]
    assert {log.level for log in logs} == {"info"}


async def test_no_logs_when_none_are_asked_for() -> None:
    # Stateless era only: a 2025-11-25 session without logging/setLevel gets
    # the server's default level (flowkit's is info).
    async with connected("2026-07-28", log_level=None) as (client, _):
        async with client.call_tool("chatty", {"count": 3}) as call:
            events = [event async for event in call]
        assert not [event for event in events if isinstance(event, LogMessage)]
        # The partials' messages still come as progress (conflated: chatty's policy).
        assert [e.message for e in events if isinstance(e, Progress)][-1] == "item 3"


@pytest.mark.parametrize("era", ERAS)
async def test_leaving_the_block_early_cancels_the_call(era: str) -> None:
    # 2025-11-25 "Cancellation": a dropped stream is no cancel there, so the
    # tool stopping proves notifications/cancelled was sent; in 2026-07-28
    # closing the stream is the cancellation.
    with trio.fail_after(10):
        async with connected(era) as (client, probe):
            async with client.call_tool("forever", {"interval_ms": 5}) as call:
                async for event in call:
                    assert isinstance(event, Progress)
                    if event.progress >= 3:
                        break
            await probe.stopped.wait()
            assert probe.cancelled
            # The client is still usable after a cancelled call.
            assert (await client.call("ticker", {"count": 1})).structured == {"count": 1}


@pytest.mark.parametrize("era", ERAS)
async def test_a_call_timeout_is_typed_and_stops_the_tool(era: str) -> None:
    with trio.fail_after(10):
        async with connected(era) as (client, probe):
            with pytest.raises(CallTimeout) as caught:
                await client.call("forever", {"interval_ms": 5}, timeout=0.3)
            assert isinstance(caught.value, TimeoutError)  # the builtin, for generic handlers
            await probe.stopped.wait()
            assert probe.cancelled


async def test_a_read_timeout_is_typed() -> None:
    with trio.fail_after(10):
        async with connected("2025-11-25", timeouts=Timeouts(read=0.3)) as (client, _):
            with pytest.raises(ReadTimeout):
                await client.call("quiet", {"seconds": 5})


@pytest.mark.parametrize("era", ERAS)
async def test_an_unknown_tool_is_an_rpc_error(era: str) -> None:
    async with connected(era) as (client, _):
        with pytest.raises(RPCError) as caught:
            await client.call("no_such_tool")
    assert caught.value.code == -32602


@pytest.mark.parametrize("era", ERAS)
async def test_a_failing_tool_is_a_result_with_is_error(era: str) -> None:
    async with connected(era) as (client, _):
        result = await client.call("boom", {"after": 2})
    assert result.is_error
    assert "the sensor caught fire" in result.text
    with pytest.raises(ToolError, match="caught fire"):
        result.raise_for_error()


async def test_an_unreachable_server_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(ConnectError):
            async with open_client(f"http://127.0.0.1:{port}/mcp"):
                pass


async def test_an_error_in_the_block_comes_out_as_itself_not_as_a_group() -> None:
    server, probe = make_server()
    async with serving(create_app(server, "/mcp")) as base:
        with pytest.raises(KeyError, match="mine"):
            async with (
                open_client(base + "/mcp", era="2025-11-25") as client,
                client.call_tool("forever", {}) as call,
            ):
                await call.__anext__()
                raise KeyError("mine")
        await probe.stopped.wait()  # and the call was cancelled on the way out


async def test_a_wrong_path_is_a_typed_error() -> None:
    server, _ = make_server()
    async with serving(create_app(server, "/mcp")) as base:
        with pytest.raises(HTTPStatusError) as caught:
            async with open_client(base + "/elsewhere"):
                pass
    assert caught.value.status_code == 404


async def test_arguments_mirrored_into_headers_in_the_stateless_era() -> None:
    # 2026-07-28 "Custom Headers from Tool Parameters": flowkit refuses a call
    # whose x-mcp-header arguments lack their Mcp-Param-* headers (-32020), so
    # this passing shows the client sent them, Base64-sentinel encoded for
    # non-ASCII; the client lists the tools by itself to find the annotations.
    server, _ = make_server()
    schema = {
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "limit": {"type": "integer", "x-mcp-header": "Limit"},
            "dry": {"type": "boolean", "x-mcp-header": "Dry"},
        },
    }

    def where(**arguments: Any) -> dict[str, Any]:
        return arguments

    server.add_tool(Tool(name="where", description="echo", input_schema=schema, fn=where))
    arguments = {"region": "Zürich", "limit": 5, "dry": False}
    async with serving(create_app(server, "/mcp")) as base:
        async with open_client(base + "/mcp", era="2026-07-28") as client:
            result = await client.call("where", arguments)
        assert result.structured == arguments
        # Without the headers the same call is refused: the test can fail.
        async with open_client(base + "/mcp", era="2026-07-28") as client:
            client._listed = True  # pretend the list was read and had nothing
            with pytest.raises(RPCError) as caught:
                await client.call("where", arguments)
        assert caught.value.code == -32020
