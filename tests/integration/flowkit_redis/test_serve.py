"""``flowkit serve --redis URL``: three processes, one Redis, any instance serves any request.

Real ``flowkit serve --demo`` processes on free ports, each started with
``--redis`` (or ``FLOWKIT_REDIS_URL``), stopped by PID (SIGTERM). A client's
requests rotate over the instances as a balancer without stickiness would
send them: initialize on A, tools/list on B, the call on C, the resumed GET
on A, DELETE on B. Bad ``--redis`` values are one-line CLI errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from mcp import Client

from flowkit.mcp import EndpointConfig
from flowkit_http import CloseStream, MCPApp, Progress, Result
from flowkit_redis import Keys

from ...system.conformance import suite
from ..http._raw import call, initialize, last_event_id, messages, raw_request, request, sse_events
from ..http._sdk import with_client
from ..http._serving import serving
from ..http.test_sdk1_client import sdk1_python  # noqa: F401  (the SDK 1.x venv fixture)
from ._fleet import flowkit_serve, nginx_front, round_robin
from ._server import REQUEST_STATE_KEYS, RedisServer
from .test_http import make_server


async def test_three_processes_serve_one_session_and_resume_exactly_once(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(60):
        async with AsyncExitStack() as stack:
            a, b, c = [
                await stack.enter_async_context(flowkit_serve(redis_server.url, env_url=index == 2))
                for index in range(3)
            ]
            client = await stack.enter_async_context(httpx.AsyncClient())
            headers = await initialize(client, a + "/mcp")
            listed = await client.post(
                b + "/mcp", content=request("tools/list", id=2), headers=headers
            )
            assert [t["name"] for t in listed.json()["result"]["tools"]] == [
                "ticker",
                "analyze_document",
                "sensor_feed",
                "sensor_windows",
                "tail_stream",  # registered by --demo --redis only
            ]
            seen: list[Any] = []
            last = ""
            body = call(3, "ticker", {"count": 30, "interval_ms": 20})
            async with raw_request(c, "POST", "/mcp", headers, body) as response:
                assert response.status == 200
                events, _ = await response.read(stop=4)
                seen.extend(messages(events))
                last = last_event_id(events, last)
            get_headers = {k: v for k, v in headers.items() if k != "content-type"}
            get_headers["accept"] = "text/event-stream"
            for base in [a, b] * 200:
                answer = await client.get(
                    base + "/mcp", headers={**get_headers, "last-event-id": last}
                )
                if answer.status_code == 409:  # C has not yet seen the disconnect
                    await trio.sleep(0.02)
                    continue
                assert answer.status_code == 200, answer.text
                seen.extend(messages(sse_events(answer.content)))
                last = last_event_id(sse_events(answer.content), last)
                if seen and "result" in seen[-1]:
                    break
                await trio.sleep(0.05)
            ticks = [
                m["params"]["progress"] for m in seen if m.get("method") == "notifications/progress"
            ]
            assert ticks == list(range(1, 31))
            assert seen[-1]["result"]["structuredContent"] == {"count": 30}
            assert (await client.delete(b + "/mcp", headers=headers)).status_code == 200
            for base in (a, b, c):
                ping = await client.post(
                    base + "/mcp", content=request("ping", id=9), headers=headers
                )
                assert ping.status_code == 404


def test_bad_redis_urls_are_one_line_cli_errors() -> None:
    for url, message in (
        ("http://127.0.0.1:6379", "redis:// or rediss://"),
        ("redis://:hunter2@/0", "names no host"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "flowkit_http", "serve", "--demo", "--redis", url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, **REQUEST_STATE_KEYS},  # past the keys check, to the URL's
        )
        assert done.returncode == 1  # every CLI error: one line, status 1
        assert message in done.stderr
        assert "hunter2" not in done.stderr
        assert "Traceback" not in done.stderr


def test_a_bad_lease_ttl_is_a_one_line_cli_error() -> None:
    for value in ("soon", "0", "-3"):
        done = subprocess.run(
            [sys.executable, "-m", "flowkit_http", "serve", "--demo", "--redis", "redis://h/0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, **REQUEST_STATE_KEYS, "FLOWKIT_REDIS_LEASE_TTL": value},
        )
        assert done.returncode == 1
        assert "FLOWKIT_REDIS_LEASE_TTL must be a number of seconds" in done.stderr
        assert "Traceback" not in done.stderr


async def _through_nginx(
    redis_url: str | None, nginx_binary: str, tmp_path: Path, body: Any
) -> Any:
    async with nginx_front(redis_url, nginx_binary, tmp_path) as proxy:
        return await with_client(proxy + "/mcp", body)


CLIENTS = Path(__file__).parent / "clients"
DEMO_TOOLS = [
    "ticker",
    "analyze_document",
    "sensor_feed",
    "sensor_windows",
    "tail_stream",
]  # --redis adds tail_stream


async def _client_process_through_nginx(
    command: list[str], redis_server: RedisServer, nginx_binary: str, tmp_path: Path
) -> Any:
    """Run a client process (``command`` + nginx's MCP URL); its last stdout line as JSON."""
    async with nginx_front(redis_server.url, nginx_binary, tmp_path) as proxy:
        done = await trio.run_process(
            [*command, proxy + "/mcp"], capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _saw_the_demo(seen: Any) -> None:
    assert seen["tools"] == DEMO_TOOLS
    assert seen["structured"] == {"count": 50}
    assert seen["progress"] == [float(i) for i in range(1, 51)]
    assert seen["words_is_error"] is False


async def test_the_official_sdk_1x_client_through_nginx_round_robin(
    redis_server: RedisServer,
    nginx_binary: str,
    tmp_path: Path,
    sdk1_python: Path,  # noqa: F811  (the imported fixture)
) -> None:
    with trio.fail_after(120):
        seen = await _client_process_through_nginx(
            [str(sdk1_python), str(CLIENTS / "sdk1_client.py")],
            redis_server,
            nginx_binary,
            tmp_path,
        )
    assert seen["protocol"] == "2025-11-25"
    _saw_the_demo(seen)


async def test_the_typescript_sdk_client_through_nginx_round_robin(
    redis_server: RedisServer, nginx_binary: str, tmp_path: Path
) -> None:
    """The TypeScript SDK the conformance suite brings (``.cache/node``), on its Node."""
    await trio.to_thread.run_sync(suite.ensure_installed, False)
    sdk = suite.CACHE / "node_modules" / "@modelcontextprotocol" / "sdk"
    if not (sdk / "package.json").exists():
        pytest.skip("the conformance suite no longer brings @modelcontextprotocol/sdk")
    with trio.fail_after(120):
        seen = await _client_process_through_nginx(
            [str(suite.node_binary()), str(CLIENTS / "ts_client.mjs"), str(sdk)],
            redis_server,
            nginx_binary,
            tmp_path,
        )
    _saw_the_demo(seen)


async def test_the_official_sdk_client_through_nginx_round_robin(
    redis_server: RedisServer, nginx_binary: str, tmp_path: Path
) -> None:
    """nginx in front of three instances, round-robin, no stickiness: every request may move.

    The control, three instances without Redis behind the same nginx, fails:
    so requests really do land on different instances.
    """
    progress: list[float] = []

    async def body(client: Client) -> Any:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        tools = await client.list_tools()
        first = await client.call_tool("ticker", {"count": 50}, progress_callback=on_progress)
        second = await client.call_tool("analyze_document", {"text": "One. Two words."})
        return tools, first, second

    with trio.fail_after(60):
        shared = tmp_path / "shared"
        shared.mkdir()
        tools, first, second = await _through_nginx(redis_server.url, nginx_binary, shared, body)
        control = tmp_path / "control"
        control.mkdir()
        with pytest.raises(BaseException) as failed:  # noqa: PT011 -- any failure of the SDK
            await _through_nginx(None, nginx_binary, control, body)
        assert not isinstance(failed.value, trio.TooSlowError)
    assert [t.name for t in tools.tools] == [
        "ticker",
        "analyze_document",
        "sensor_feed",
        "sensor_windows",
        "tail_stream",  # registered by --demo --redis only
    ]
    assert not first.is_error
    assert first.structured_content == {"count": 50}
    assert progress == [float(i) for i in range(1, 51)]
    assert not second.is_error


async def test_the_sdk_resumes_a_closed_stream_on_another_instance_and_follows_it(
    redis_server: RedisServer, nginx_binary: str, tmp_path: Path, keys: Keys
) -> None:
    """SSE polling through nginx round-robin: the tool ends its response early
    (CloseStream) and goes on; the SDK 2.x client reconnects with Last-Event-ID,
    nginx sends that GET to another instance, which follows the call live through
    Redis to its result: every progress once, in order."""

    ran: list[str] = []

    def polled_on(name: str) -> Any:
        async def polled(count: int) -> AsyncIterator[Progress | Result | CloseStream]:
            """Tick, ending the response after tick 5; the call goes on."""
            ran.append(name)
            for i in range(1, count + 1):
                if i == 6:
                    yield CloseStream()
                await trio.sleep(0.02)
                yield Progress(f"tick {i}", total=count)
            yield Result(structured={"count": count}, text="done")

        return polled

    config = EndpointConfig(sse_retry_ms=100)
    apps = {
        name: MCPApp(
            make_server(redis_server.url, keys, name, tools=[polled_on(name)], config=config)
        )
        for name in "abc"
    }
    progress: list[float] = []

    async def body(client: Client) -> Any:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        return await client.call_tool("polled", {"count": 40}, progress_callback=on_progress)

    with trio.fail_after(60):
        async with AsyncExitStack() as stack:
            bases = [await stack.enter_async_context(serving(app)) for app in apps.values()]
            proxy = await stack.enter_async_context(round_robin(nginx_binary, tmp_path, bases))
            result = await with_client(proxy + "/mcp", body)
    assert not result.is_error
    assert result.structured_content == {"count": 40}
    assert progress == [float(i) for i in range(1, 41)]  # exactly once, in order
    assert len(ran) == 1
    elsewhere = [app.telemetry.resumes for name, app in apps.items() if name != ran[0]]
    assert sum(elsewhere) >= 1  # the SDK's GET landed on an instance the call did not run on
