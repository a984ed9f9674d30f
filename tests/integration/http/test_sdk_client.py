"""The official ``mcp`` SDK 2.x client (handshake mode) against a real hypercorn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio
from mcp import Client, MCPError

from flowkit_http import create_app

from ._sdk import with_client
from ._serving import serving
from ._tools import make_server


async def test_initialize_list_and_call_with_progress() -> None:
    server, _ = make_server()
    seen: list[tuple[float, float | None, str | None]] = []

    async def body(client: Client) -> Any:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        tools = await client.list_tools()
        result = await client.call_tool("ticker", {"count": 200}, progress_callback=on_progress)
        return (
            client.server_info,
            client.protocol_version,
            client.server_capabilities,
            tools,
            result,
        )

    with trio.fail_after(20):
        async with serving(create_app(server)) as url:
            info, version, capabilities, tools, result = await with_client(url + "/mcp", body)
    assert info.name == "test"
    assert version == "2025-11-25"
    assert capabilities.tools is not None
    assert capabilities.logging is not None
    assert [t.name for t in tools.tools][:3] == ["ticker", "analyze_document", "sensor_feed"]
    assert not result.is_error
    assert result.structured_content == {"count": 200}
    assert [p for p, _, _ in seen] == list(range(1, 201))  # lossless: every one, in order
    assert {t for _, t, _ in seen} == {200}
    assert seen[-1][2] == "tick 200/200"
    assert any(getattr(c, "text", None) == "ticked 200 times" for c in result.content)


async def test_partial_results_arrive_as_log_messages() -> None:
    server, _ = make_server()
    logs: list[Any] = []

    async def on_log(params: Any) -> None:
        logs.append(params)

    text = (
        "# Intro\nFlowkit streams. It streams well.\n\n# Body\nPipelines of operators run on trio."
    )

    async def body(client: Client) -> Any:
        return await client.call_tool("analyze_document", {"text": text})

    with trio.fail_after(20):
        async with serving(create_app(server)) as url:
            result = await with_client(url + "/mcp", body, logging_callback=on_log)
    assert result.structured_content["sections"] == 2
    assert result.structured_content["sentences"] == 3
    assert [log.data["title"] for log in logs] == ["Intro", "Body"]


async def test_failing_tool_and_bad_arguments_are_error_results() -> None:
    server, _ = make_server()

    async def body(client: Client) -> Any:
        failed = await client.call_tool("boom", {"after": 2})
        invalid = await client.call_tool("ticker", {"count": "many"})
        with pytest.raises(MCPError) as info:
            await client.call_tool("no_such_tool", {})
        return failed, invalid, info.value

    with trio.fail_after(20):
        async with serving(create_app(server)) as url:
            failed, invalid, unknown = await with_client(url + "/mcp", body)
    assert failed.is_error
    assert "RuntimeError: the sensor caught fire" in failed.content[0].text
    assert invalid.is_error
    assert "'count'" in invalid.content[0].text
    assert unknown.error.code == -32602


async def test_cancelling_a_call_stops_its_pipeline_and_sends_no_response() -> None:
    server, probe = make_server()

    async def body(client: Client) -> Any:
        first = asyncio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            first.set()

        call = asyncio.create_task(
            client.call_tool("forever", {"interval_ms": 5}, progress_callback=on_progress)
        )
        await first.wait()
        call.cancel()  # the SDK sends notifications/cancelled
        with pytest.raises(asyncio.CancelledError):
            await call
        # The session is still usable afterwards.
        return await client.call_tool("ticker", {"count": 3})

    with trio.fail_after(20):
        async with serving(create_app(server)) as url:
            after = await with_client(url + "/mcp", body)
            await probe.stopped.wait()
    assert probe.cancelled
    assert after.structured_content == {"count": 3}


async def test_lossy_tool_reports_drops() -> None:
    server, _ = make_server()

    async def body(client: Client) -> Any:
        return await client.call_tool("sensor_feed", {"readings": 5000, "consume_ms": 1})

    with trio.fail_after(30):
        async with serving(create_app(server)) as url:
            result = await with_client(url + "/mcp", body)
    summary = result.structured_content
    assert summary["delivered"] + summary["dropped"] == 5000
    assert summary["dropped"] > 0
