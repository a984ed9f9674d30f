"""``flowkit serve`` as a subprocess: MODULE:ATTR import, --demo, SIGTERM -> exit 0, errors, logs."""

from __future__ import annotations

import gc
import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ._flowkit_serve import FLOWKIT, free_port, running, serve_and_stop, stop
from ._raw import call, initialize

_USER_MODULE = '''
from flowkit_http import MCPServer

server = MCPServer(name="from-cwd")


@server.tool
def hello(name: str) -> str:
    """Greet someone."""
    return f"hello {name}"
'''


async def test_serve_module_attr_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "my_tools.py").write_text(_USER_MODULE)
    with trio.fail_after(30):
        outcome = await serve_and_stop(["my_tools:server", "--path", "/tools"], tmp_path, "/tools")
    assert outcome == {
        "tools": ["hello"],
        "resources": [],
        "resourceTemplates": [],
        "prompts": [],
        "code": 0,
        "one more session": 200,
    }


async def test_serve_demo(tmp_path: Path) -> None:
    with trio.fail_after(30):
        outcome = await serve_and_stop(["--demo"], tmp_path)
    assert outcome == {
        "tools": ["ticker", "analyze_document", "sensor_feed", "sensor_windows"],
        "resources": ["sensor://demo/room"],
        "resourceTemplates": [],
        "prompts": ["room_report"],
        "code": 0,
        "one more session": 200,
    }


async def test_serve_max_sessions_caps_live_sessions(tmp_path: Path) -> None:
    with trio.fail_after(30):
        outcome = await serve_and_stop(["--demo", "--max-sessions", "3"], tmp_path, sessions=3)
    assert outcome["one more session"] == 503  # the 4th initialize is over the cap


def test_backlog_defaults_above_hypercorns_and_is_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hypercorn's backlog of 100 drops connects in a burst; flowkit serve uses 1024."""
    from types import SimpleNamespace

    from flowkit_http import _cli

    backlogs: list[int] = []
    fake_trio = SimpleNamespace(
        run=lambda _fn, _app, _mcp, config, *_: backlogs.append(config.backlog)
    )
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
        await _cli._serve(object(), [], Config())
        assert gc.get_threshold() == _cli.GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


# -- errors: one line, exit 1 ------------------------------------------------------------


def _flowkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWKIT, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line_failure(_flowkit("serve", "--demo", "--port", str(port)))
    assert line == (
        f"flowkit serve: error: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "argument --port: 70000 is not a port (0-65535; 0 picks a free one)"),
        (["--port", "http"], "argument --port: 'http' is not a port number"),
        (["--path", "mcp"], "argument --path: 'mcp' is not an endpoint path"),
        (["--path", "/mcp?x=1"], "argument --path: '/mcp?x=1' is not an endpoint path"),
        (["--host", "no-such-host.invalid"], "cannot listen on no-such-host.invalid:8000: "),
        (["--max-sessions", "0"], "argument --max-sessions: must be at least 1, got 0"),
    ],
)
def test_bad_options_are_one_line_and_exit_1(args: list[str], message: str) -> None:
    line = _one_line_failure(_flowkit("serve", "--demo", *args))
    assert line.startswith(f"flowkit serve: error: {message}"), line


def test_bad_targets_are_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "my_app.py").write_text(_TWO_MOUNTS)
    cases = {
        ("serve",): "give exactly one of TARGET (MODULE:ATTR) and --demo",
        ("serve", "no_such_module:server"): "cannot import 'no_such_module'",
        ("serve", "my_app:nothing"): "'my_app' has no attribute 'nothing'",
        ("serve", "my_app:app", "--path", "/x"): "--path applies to an MCPServer target",
    }
    for args, message in cases.items():
        line = _one_line_failure(_flowkit(*args, cwd=tmp_path))
        assert line.startswith(f"flowkit serve: error: {message}"), line


def test_usage_errors_are_one_line_and_exit_1() -> None:
    cases = {
        (): "the following arguments are required: COMMAND",
        ("bogus",): "argument COMMAND: invalid choice: 'bogus'",
        ("serve", "--demo", "--bogus"): "unrecognized arguments: --bogus",
    }
    for args, message in cases.items():
        line = _one_line_failure(_flowkit(*args))
        assert line.startswith(f"flowkit: error: {message}"), line
        assert line.endswith("(see flowkit --help)")


def test_version() -> None:
    import importlib.metadata

    import flowkit

    assert flowkit.__version__ == importlib.metadata.version("flowkit")
    done = _flowkit("--version")
    assert (done.returncode, done.stdout) == (0, f"flowkit {flowkit.__version__}\n")


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    from flowkit_http import _cli

    for args in (["--help"], ["serve", "--help"]):
        with pytest.raises(SystemExit) as exited:
            _cli.main(args)
        assert exited.value.code == 0
        text = capsys.readouterr().out
        assert "usage: flowkit" in text
        for markup in ("``", ":class:", ":func:", "~flowkit"):
            assert markup not in text, (args, text)


# -- start-up and shutdown --------------------------------------------------------------

_TWO_MOUNTS = '''
from quart_trio import QuartTrio

from flowkit_http import MCPServer, mount

tools, admin = MCPServer(name="tools"), MCPServer(name="admin")


@tools.tool
def hello(name: str) -> str:
    """Greet someone."""
    return f"hello {name}"


@admin.tool
def stats() -> dict[str, int]:
    """Report."""
    return {"calls": 0}


app = QuartTrio(__name__)
mount(app, tools, "/mcp")
mount(app, admin, "/admin/mcp")
'''


async def test_every_mounted_endpoint_is_printed_and_served(tmp_path: Path) -> None:
    (tmp_path / "my_app.py").write_text(_TWO_MOUNTS)
    port = free_port()
    with trio.fail_after(30):
        async with running(["my_app:app", "--port", str(port)], tmp_path, ready=2) as (
            process,
            output,
        ):
            base = f"http://127.0.0.1:{port}"
            lines = [line for line in output.decode().splitlines() if "serving MCP" in line]
            assert lines == [
                f"flowkit: serving MCP at {base}/mcp",
                f"flowkit: serving MCP at {base}/admin/mcp",
            ]
            names = []
            async with httpx.AsyncClient() as client:
                for path in ("/mcp", "/admin/mcp"):
                    headers = await initialize(client, base + path)
                    body = b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
                    reply = await client.post(base + path, content=body, headers=headers)
                    names.append([t["name"] for t in reply.json()["result"]["tools"]])
            assert names == [["hello"], ["stats"]]
            assert await stop(process, output) == 0


async def test_sigterm_is_handled_from_the_moment_the_server_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signal receiver is open before hypercorn starts (and prints "serving").

    It used to be opened in hypercorn's shutdown trigger, which runs only after
    start-up: a SIGTERM right after the "serving" line met the default action
    and killed the process (exit status -15) instead of shutting it down.
    """
    from hypercorn.config import Config

    from flowkit_http import _cli

    seen: list[object] = []

    async def fake_serve(app: object, config: Config, **kw: Any) -> None:
        seen.append(signal.getsignal(signal.SIGTERM))
        kw["task_status"].started([])

    monkeypatch.setattr(_cli, "serve", fake_serve)
    before = gc.get_threshold()
    try:
        await _cli._serve(object(), [], Config())
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
    assert seen
    assert seen[0] not in (signal.SIG_DFL, signal.SIG_IGN, None)


async def test_sigterm_right_after_start_exits_0(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running(["--demo", "--port", str(free_port())], tmp_path) as (process, output):
            assert await stop(process, output) == 0


# -- logs ---------------------------------------------------------------------------------

_FAILING_TOOL = '''
from flowkit_http import MCPServer

server = MCPServer(name="failing")


@server.tool
def explode() -> str:
    """Raise."""
    raise KeyError("no such sensor")
'''


async def _call_and_stop(args: list[str], cwd: Path, tool: str) -> tuple[int, str]:
    port = free_port()
    async with running([*args, "--port", str(port)], cwd) as (process, output):
        url = f"http://127.0.0.1:{port}/mcp"
        async with httpx.AsyncClient() as client:
            headers = await initialize(client, url)
            reply = await client.post(url, content=call(2, tool, {}), headers=headers)
            assert b'"isError":true' in reply.content
        code = await stop(process, output)
    return code, output.decode()


async def test_a_failing_tool_shows_on_the_console_with_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "my_tools.py").write_text(_FAILING_TOOL)
    with trio.fail_after(30):
        code, output = await _call_and_stop(["my_tools:server"], tmp_path, "explode")
    assert code == 0
    assert "ERROR flowkit_http: tool 'explode' failed: KeyError: 'no such sensor'" in output
    assert "Traceback (most recent call last):" in output
    assert 'raise KeyError("no such sensor")' in output
    assert '"POST /mcp' not in output  # no access log by default


async def test_access_log_and_log_level(tmp_path: Path) -> None:
    (tmp_path / "my_tools.py").write_text(_FAILING_TOOL)
    with trio.fail_after(30):
        _, output = await _call_and_stop(["my_tools:server", "--access-log"], tmp_path, "explode")
        _, quiet = await _call_and_stop(
            ["my_tools:server", "--access-log", "--log-level", "error"], tmp_path, "explode"
        )
    access = [line for line in output.splitlines() if "flowkit_http.access" in line]
    # One line per request (initialize, initialized, tools/call), the streamed one too.
    assert len(access) == 3, output
    for line in access:
        assert re.fullmatch(
            r'INFO flowkit_http.access: 127\.0\.0\.1:\d+ "POST /mcp HTTP/1\.1" (200|202) \d+ \d+\.\d{6}s',
            line,
        ), line
    assert "INFO" not in quiet  # neither access lines nor "SIGTERM: shutting down"
    assert "ERROR flowkit_http: tool 'explode' failed" in quiet


async def test_secrets_are_never_logged(tmp_path: Path) -> None:
    """An Authorization header is in no log line, at any level, in either format.

    (A Redis password is redacted too: tests/integration/flowkit_redis/test_serve.py.)
    """
    (tmp_path / "my_tools.py").write_text(_FAILING_TOOL)
    secret = b"s3cr3t-token-0123456789"
    for log_format in ("text", "json"):
        port = free_port()
        flags = ["--access-log", "--log-level", "debug", "--log-format", log_format]
        with trio.fail_after(30):
            async with running(["my_tools:server", *flags, "--port", str(port)], tmp_path) as (
                process,
                output,
            ):
                url = f"http://127.0.0.1:{port}/mcp"
                async with httpx.AsyncClient() as client:
                    headers = await initialize(client, url)
                    headers["authorization"] = "Bearer " + secret.decode()
                    await client.post(url, content=call(2, "explode", {}), headers=headers)
                    await client.delete(url, headers=headers)
                await stop(process, output)
        assert b"flowkit_http.access" in output, output  # the requests were logged...
        assert b"explode" in output
        assert secret not in output, output  # ...and the header was not
