"""The client against the official MCP SDK server (uvicorn, a child process), both eras.

The peer is ``tests/integration/client/_official_server.py``: the SDK's ``MCPServer``
with an in-memory event store, which is what makes it resume streams
(uvicorn comes with the ``mcp`` package of the dev extra).
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import pytest
import trio

from flowkit_client import LogMessage, Progress, RetryPolicy, RPCError, open_client

from ..._system import free_port, listening_process
from ._proxy import cutting_proxy


@pytest.fixture
async def official() -> AsyncIterator[str]:
    """The official server on a free port; yields its base URL."""
    port = free_port()
    async with listening_process(
        [sys.executable, "-m", "tests.integration.client._official_server", "--port", str(port)],
        port,
        start_within=30,
    ):
        yield f"http://127.0.0.1:{port}"


async def test_auto_negotiates_the_stateless_era_with_the_official_server(official: str) -> None:
    async with open_client(official + "/mcp") as client:
        assert client.server.protocol_version == "2026-07-28"
        assert client.server.name == "official-test"
        assert {t.name for t in await client.list_tools()} == {
            "ticker",
            "chatty",
            "ask",
            "sample",
            "roots",
            "greet",
        }


@pytest.mark.parametrize("era", ["2026-07-28", "2025-11-25"])
async def test_progress_logs_and_result_from_the_official_server(official: str, era: str) -> None:
    async with open_client(official + "/mcp", era=era) as client:
        async with client.call_tool("ticker", {"count": 3}) as call:
            events = [event async for event in call]
        async with client.call_tool("chatty", {"count": 2}) as call:
            logs = [e.data async for e in call if isinstance(e, LogMessage)]
    assert events[:3] == [Progress(i, 3, f"tick {i}/3") for i in (1, 2, 3)]
    assert events[3].structured == {"count": 3}  # type: ignore[union-attr]
    assert logs == [{"i": 1}, {"i": 2}]


async def test_elicitation_and_sampling_callbacks(official: str) -> None:
    asked: list[Mapping[str, Any]] = []

    async def on_elicitation(params: Mapping[str, Any]) -> Mapping[str, Any]:
        asked.append(params)
        return {"action": "accept", "content": {"name": "Ada"}}

    async def on_sampling(params: Mapping[str, Any]) -> Mapping[str, Any]:
        text = params["messages"][0]["content"]["text"]
        return {
            "role": "assistant",
            "content": {"type": "text", "text": text.upper()},
            "model": "echo",
        }

    async with open_client(
        official + "/mcp", era="2025-11-25", on_elicitation=on_elicitation, on_sampling=on_sampling
    ) as client:
        asked_result = await client.call("ask")
        sampled = await client.call("sample")
    assert asked_result.structured == {"action": "accept", "name": "Ada"}
    assert asked[0]["message"] == "What is your name?"
    assert "name" in asked[0]["requestedSchema"]["properties"]
    assert sampled.text == "SAY HI"


async def test_roots_callback_answers_roots_list(official: str) -> None:
    async def on_roots(params: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"roots": [{"uri": "file:///work/project", "name": "project"}]}

    async with open_client(official + "/mcp", era="2025-11-25", on_roots=on_roots) as client:
        result = await client.call("roots")
    assert result.structured == {"uris": ["file:///work/project"]}


async def test_a_request_without_a_callback_is_refused_and_the_call_goes_on(official: str) -> None:
    async with open_client(official + "/mcp", era="2025-11-25") as client:
        with pytest.raises(RPCError):  # the SDK turns the refusal into an error response
            await client.call("ask")
        assert (await client.call("ticker", {"count": 1})).structured == {"count": 1}


async def test_resumption_against_the_official_server_with_an_event_store(official: str) -> None:
    count = 300
    with trio.fail_after(60):
        async with (
            cutting_proxy(official, cut_after=4096) as (proxy, stats),
            open_client(
                proxy + "/mcp",
                era="2025-11-25",
                retry=RetryPolicy(initial=0.01, max_delay=0.05),
                rng=random.Random(3),
            ) as client,
            client.call_tool("ticker", {"count": count}) as call,
        ):
            progress = [e.progress async for e in call if isinstance(e, Progress)]
            result = await call.result()
    assert progress == list(range(1, count + 1))
    assert result.structured == {"count": count}
    assert stats.cuts >= 5


async def test_flowkit_call_no_input_declines_an_elicitation(official: str) -> None:
    done = await trio.run_process(
        [
            sys.executable,
            "-m",
            "flowkit_http",
            "call",
            official + "/mcp",
            "ask",
            "--era",
            "2025-11-25",
            "--no-input",
            "--json",
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = orjson.loads(done.stdout.splitlines()[-1])
    assert last["type"] == "result"
    assert last["structuredContent"] == {"action": "decline", "name": None}
