"""``flowkit serve`` as a subprocess: MODULE:ATTR import, --demo, SIGTERM -> exit 0."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ._raw import JSON_HEADERS, initialize, request

_INITIALIZE = request(
    "initialize",
    protocolVersion="2025-11-25",
    capabilities={},
    clientInfo={"name": "raw", "version": "0"},
)

_USER_MODULE = '''
from flowkit_http import MCPServer

server = MCPServer(name="from-cwd")


@server.tool
def hello(name: str) -> str:
    """Greet someone."""
    return f"hello {name}"
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve_and_stop(
    args: list[str], cwd: Path, path: str = "/mcp", sessions: int = 1
) -> dict[str, object]:
    port = _free_port()
    command = [sys.executable, "-m", "flowkit_http._cli", "serve", *args, "--port", str(port)]
    process = await trio.lowlevel.open_process(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert process.stdout is not None
        output = b""
        while b"serving MCP at" not in output:
            chunk = await process.stdout.receive_some()
            assert chunk, output.decode()
            output += chunk
        assert f"http://127.0.0.1:{port}{path}".encode() in output
        url = f"http://127.0.0.1:{port}{path}"
        async with httpx.AsyncClient() as client:
            for _ in range(sessions):
                headers = await initialize(client, url)
            body = b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
            tools = (await client.post(url, content=body, headers=headers)).json()["result"]
            one_more = await client.post(url, content=_INITIALIZE, headers=JSON_HEADERS)
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            code = await process.wait()
        return {
            "tools": [t["name"] for t in tools["tools"]],
            "code": code,
            "one more session": one_more.status_code,
        }
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serve_module_attr_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "my_tools.py").write_text(_USER_MODULE)
    with trio.fail_after(30):
        outcome = await _serve_and_stop(["my_tools:server", "--path", "/tools"], tmp_path, "/tools")
    assert outcome == {"tools": ["hello"], "code": 0, "one more session": 200}


async def test_serve_demo(tmp_path: Path) -> None:
    with trio.fail_after(30):
        outcome = await _serve_and_stop(["--demo"], tmp_path)
    assert outcome == {
        "tools": ["ticker", "analyze_document", "sensor_feed", "sensor_windows"],
        "code": 0,
        "one more session": 200,
    }


async def test_serve_max_sessions_caps_live_sessions(tmp_path: Path) -> None:
    with trio.fail_after(30):
        outcome = await _serve_and_stop(["--demo", "--max-sessions", "3"], tmp_path, sessions=3)
    assert outcome["one more session"] == 503  # the 4th initialize is over the cap


def test_backlog_defaults_above_hypercorns_and_is_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hypercorn's backlog of 100 drops connects in a burst; flowkit serve uses 1024."""
    from types import SimpleNamespace

    from flowkit_http import _cli

    backlogs: list[int] = []
    fake_trio = SimpleNamespace(run=lambda _fn, _app, _mcp, config: backlogs.append(config.backlog))
    monkeypatch.setattr(_cli, "trio", fake_trio)
    assert _cli.main(["serve", "--demo"]) == 0
    assert _cli.main(["serve", "--demo", "--backlog", "64"]) == 0
    assert backlogs == [1024, 64]


async def test_serve_freezes_and_tunes_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """After start-up: gc.freeze() and fewer young collections (tail latency)."""
    import gc

    from hypercorn.config import Config

    from flowkit_http import _cli

    async def fake_serve(app: object, config: Config, **kw: Any) -> None:
        kw["task_status"].started([])

    monkeypatch.setattr(_cli, "serve", fake_serve)
    before = gc.get_threshold()
    try:
        await _cli._serve(object(), None, Config())
        assert gc.get_threshold() == _cli.GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
