"""``flowkit call`` and ``flowkit tools`` as a user runs them: subprocesses against a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import orjson
import pytest
import trio

from flowkit_http import create_app

from ..http._serving import serving
from ..http._tools import make_server


async def _flowkit(
    *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "flowkit_http", *argv],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def _lines(out: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("era", ["auto", "2025-11-25"])
async def test_call_json_writes_one_line_per_event_the_result_last(era: str) -> None:
    server, _ = make_server()
    async with serving(create_app(server, "/mcp")) as base:
        done = await _flowkit("call", base + "/mcp", "ticker", "count=3", "--json", "--era", era)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stdout)
    assert lines[:3] == [
        {"type": "progress", "progress": i, "total": 3, "message": f"tick {i}/3"} for i in (1, 2, 3)
    ]
    assert lines[3]["type"] == "result"
    assert lines[3]["structuredContent"] == {"count": 3}
    assert len(lines) == 4


async def test_call_prints_partials_as_they_arrive_and_the_result() -> None:
    server, _ = make_server()
    async with serving(create_app(server, "/mcp")) as base:
        done = await _flowkit("call", base + "/mcp", "chatty", "count=2")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert '[info] {"i":1}' in out
    assert '[info] {"i":2}' in out
    assert out.index('{"i":2}') < out.index('"count": 2')  # the pretty result comes last


async def test_quiet_prints_the_result_only() -> None:
    server, _ = make_server()
    async with serving(create_app(server, "/mcp")) as base:
        done = await _flowkit("call", base + "/mcp", "chatty", "count=2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"count": 2}


async def test_exit_status_is_one_on_a_tool_error_and_three_on_a_protocol_error() -> None:
    server, _ = make_server()
    async with serving(create_app(server, "/mcp")) as base:
        failed = await _flowkit("call", base + "/mcp", "boom", "after=1")
        timed_out = await _flowkit("call", base + "/mcp", "quiet", "seconds=5", "--timeout", "0.2")
        with socket.socket() as sock:  # bound, never listening: connections are refused
            sock.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
            refused = await _flowkit("call", closed, "ticker", "count=1")
        bad_value = await _flowkit("call", base + "/mcp", "ticker", "count=many")
    assert failed.returncode == 1
    assert b"the sensor caught fire" in failed.stdout
    assert timed_out.returncode == 3
    assert timed_out.stderr.decode().strip() == (
        "flowkit call: CallTimeout: quiet: no result within 0.2 s"
    )
    assert refused.returncode == 3
    assert refused.stderr.startswith(b"flowkit call: ConnectError: ")
    assert bad_value.returncode == 2
    assert bad_value.stderr.decode().strip() == "flowkit call: count: expected integer, got 'many'"
    for done in (failed, timed_out, refused, bad_value):
        assert b"Traceback" not in done.stderr


async def test_header_is_sent_with_every_request() -> None:
    server, _ = make_server()

    def authenticate(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
        return "me" if (b"authorization", b"Bearer s3cret") in headers else None

    server.config = attrs.evolve(server.config, authenticate=authenticate)
    async with serving(create_app(server, "/mcp")) as base:
        allowed = await _flowkit(
            "call",
            base + "/mcp",
            "ticker",
            "count=1",
            "-q",
            "--header",
            "Authorization: Bearer s3cret",
        )
        refused = await _flowkit("call", base + "/mcp", "ticker", "count=1", "-q")
    assert allowed.returncode == 0, allowed.stderr
    assert refused.returncode == 3
    assert b"HTTP 401" in refused.stderr


async def test_ctrl_c_cancels_the_call_on_the_server() -> None:
    server, probe = make_server()
    async with serving(create_app(server, "/mcp")) as base:
        with trio.fail_after(20):
            process = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    "-m",
                    "flowkit_http",
                    "call",
                    base + "/mcp",
                    "forever",
                    "interval_ms=5",
                    "--json",
                    "--era",
                    "2025-11-25",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert process.stdout is not None
            assert process.stderr is not None
            first = await process.stdout.receive_some(4096)
            assert b'"type":"progress"' in first
            err = b""
            async with trio.open_nursery() as nursery:

                async def drain() -> None:
                    # Keep reading: a child blocked writing to a full pipe sees no signal.
                    assert process.stdout is not None
                    while await process.stdout.receive_some(65536):
                        pass

                nursery.start_soon(drain)
                process.send_signal(signal.SIGINT)
                status = await process.wait()
                while chunk := await process.stderr.receive_some(4096):
                    err += chunk
            await probe.stopped.wait()
    assert status == 130
    assert err.decode().strip() == "flowkit: cancelled"
    assert probe.cancelled  # 2025-11-25: only notifications/cancelled stops it


async def test_tools_is_a_table_of_parameters() -> None:
    server, _ = make_server()
    async with serving(create_app(server, "/mcp")) as base:
        done = await _flowkit("tools", base + "/mcp")
        as_json = await _flowkit("tools", base + "/mcp", "--json")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "ticker" in out
    assert "[interval_ms: integer = 0]" in out
    assert "count: integer" in out
    names = [tool["name"] for tool in orjson.loads(as_json.stdout)]
    assert "ticker" in names
    assert "boom" in names


async def test_help_says_it_all() -> None:
    done = await _flowkit("call", "--help")
    text = done.stdout.decode()
    for option in (
        "(URL | --stdio COMMAND) TOOL [key=value ...]",
        "--stdio COMMAND",
        "--args",
        "--header",
        "--timeout",
        "--quiet",
        "--json",
        "--no-input",
        "--era",
        "Ctrl-C",
        "elicitation",
        "Exit status",
    ):
        assert option in text
    tools = (await _flowkit("tools", "--help")).stdout.decode()
    for option in ("(URL | --stdio COMMAND)", "--header", "--json", "--era"):
        assert option in tools


@pytest.mark.parametrize("missing", ["httpx", "rich"])
def test_without_the_client_extra_the_command_says_what_to_install(missing: str) -> None:
    script = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "from flowkit_http._cli import main\n"
        "sys.exit(main(['call', 'http://127.0.0.1:9/mcp', 'ticker']))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("flowkit call: pip install 'flowkit[client]' (")
    assert b"Traceback" not in done.stderr
