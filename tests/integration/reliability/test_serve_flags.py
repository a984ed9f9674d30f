"""Issue 20: every limit of the hardening is a flag of ``flowkit serve``.

Each flag reaches what it configures (the endpoint's config, the event
store's bounds, the server's limits); a bad value is one line on stderr and
exit status 1; and against the real ``flowkit serve`` the call cap and the
detached-call grace given as flags hold.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import trio

from flowkit.mcp import EndpointConfig, InMemoryEventStore
from flowkit_http import ServeLimits

from ..http._raw import call, initialize, messages, sse_events
from ._support import eventually, flowkit_serve_process
from .test_detached_calls import _start_and_hang_up

_TARGET = """
from flowkit_http import MCPServer

server = MCPServer(name="flags")
"""


def test_every_limit_flag_reaches_what_it_configures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowkit_http import _cli

    (tmp_path / "flags_target.py").write_text(_TARGET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    runs: list[dict[str, object]] = []
    monkeypatch.setattr(_cli, "trio", SimpleNamespace(run=lambda fn, *_: runs.append(fn.keywords)))
    flags = {
        "--max-connections": "7",
        "--body-timeout": "3",
        "--body-budget": "4KiB",
        "--accept-pacing": "3",
        "--max-sessions": "9",
        "--max-sessions-per-client": "2",
        "--session-idle-timeout": "60",
        "--handshake-timeout": "off",
        "--detached-grace": "30",
        "--max-calls": "100",
        "--max-calls-per-session": "4",
        "--max-body-size": "1MiB",
        "--store-max-bytes": "64MiB",
        "--store-max-bytes-per-session": "8MiB",
        "--store-max-bytes-per-stream": "512KiB",
    }
    args = [item for pair in flags.items() for item in pair]
    proxies = ["--trusted-proxy", "10.0.0.1", "--trusted-proxy", "[::1]"]
    assert _cli.main(["serve", "flags_target:server", *args, *proxies]) == 0
    assert runs[0]["limits"] == ServeLimits(
        max_connections=7, body_timeout=3.0, body_budget=4096, accept_pacing=3
    )
    assert _cli.main(["serve", "flags_target:server", "--accept-pacing", "off"]) == 0
    assert runs[1]["limits"] == ServeLimits(accept_pacing=0)
    import flags_target

    config = flags_target.server.config
    assert config == EndpointConfig(
        server_name="flags",
        max_sessions=9,
        max_sessions_per_client=2,
        trusted_proxies=("10.0.0.1", "::1"),
        session_idle_timeout=60.0,
        handshake_timeout=None,
        detached_call_grace=30.0,
        max_calls=100,
        max_calls_per_session=4,
        max_body_size=2**20,
    )
    store = flags_target.server.event_store
    assert isinstance(store, InMemoryEventStore)
    assert (store.max_bytes, store.max_bytes_per_session, store.max_bytes_per_stream) == (
        64 * 2**20,
        8 * 2**20,
        512 * 1024,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-sessions", "0"], "argument --max-sessions: must be at least 1, got 0"),
        (["--max-calls", "many"], "argument --max-calls: 'many' is not a whole number"),
        (
            ["--detached-grace", "-5"],
            "argument --detached-grace: must be a positive number of seconds, got -5",
        ),
        (
            ["--body-timeout", "nan"],
            "argument --body-timeout: must be a positive number of seconds, got nan",
        ),
        (
            ["--store-max-bytes-per-session", "1TB"],
            "argument --store-max-bytes-per-session: '1TB' is not a size in bytes",
        ),
        (["--trusted-proxy", "proxy.local"], "argument --trusted-proxy: 'proxy.local' is not"),
        (["--body-budget", "0"], "argument --body-budget: '0' is not a size in bytes"),
        (["--accept-pacing", "0"], "argument --accept-pacing: must be at least 1, got 0"),
        (
            ["--redis", "redis://127.0.0.1:1/0", "--store-max-bytes", "1MiB"],
            "--store-max-bytes bounds the in-memory event store, not --redis",
        ),
    ],
)
def test_bad_limit_values_are_one_line_and_exit_1(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flowkit_http", "serve", "--demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"flowkit serve: error: {message}"), lines[0]


def test_a_flag_for_an_mcpserver_refuses_another_target(tmp_path: Path) -> None:
    (tmp_path / "an_app.py").write_text("from quart_trio import QuartTrio\napp = QuartTrio('x')\n")
    done = subprocess.run(
        [sys.executable, "-m", "flowkit_http", "serve", "an_app:app", "--detached-grace", "9"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "flowkit serve: error: --detached-grace applies to an MCPServer target (or --demo)\n"
    )


async def test_the_call_cap_and_grace_flags_hold_against_flowkit_serve(tmp_path: Path) -> None:
    args = ["--demo", "--max-calls-per-session", "1", "--detached-grace", "1"]
    with trio.fail_after(40):
        async with (
            flowkit_serve_process(args, tmp_path) as served,
            httpx.AsyncClient() as client,
        ):
            url = served.base + "/mcp"
            headers = await initialize(client, url)
            await _start_and_hang_up(served.base, headers, 1)  # runs on, detached
            more = call(2, "ticker", {"count": 1})
            refused = await client.post(url, content=more, headers=headers)
            assert refused.status_code == 429  # one call in flight is the session's cap
            assert refused.json()["error"]["code"] == -32000
            started = trio.current_time()
            answers: list[httpx.Response] = []

            async def served_again() -> bool:
                answers.append(await client.post(url, content=more, headers=headers))
                return answers[-1].status_code == 200

            while not await served_again():  # the grace (1 s) cancels the detached call
                await eventually(lambda: trio.current_time() > started + len(answers) * 0.2)
            waited = trio.current_time() - started
            assert 0.5 < waited < 10, waited
            final = messages(sse_events(answers[-1].content))[-1]
            assert final["result"]["structuredContent"] == {"count": 1}
            served.process.send_signal(signal.SIGTERM)
        assert served.process.returncode == 0
    print(f"\n--detached-grace 1: the session's slot came back after {waited:.2f} s")
