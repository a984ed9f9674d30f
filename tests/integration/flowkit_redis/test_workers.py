"""``flowkit serve --workers N``: N real processes on one port, sharing state through Redis.

A real ``flowkit serve --demo --workers 2 --redis URL`` against the session's
``redis-server``: the official SDK client calls ``ticker`` in both eras from
many sessions at once, every worker serves some of them (each worker's own
``/metrics`` at ``--observe-bind`` port + its index counts its calls), and
SIGTERM to the parent stops both workers and exits 0. What it refuses
(no ``--redis``, no request-state keys, bad values) is
one line and exit status 1; a worker that dies stops the server (exit 1).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import trio
from mcp import Client

from flowkit_http._serve_flags import request_state_keys

from ..http._sdk import with_client
from ._fleet import SERVE, serve_env, ticker_calls, two_free_ports, workers
from ._server import RedisServer


async def _ticker(url: str, mode: str) -> int:
    async def body(client: Client) -> int:
        result = await client.call_tool("ticker", {"count": 5, "interval_ms": 10})
        assert not result.is_error, result
        return 1

    return await with_client(url, body, mode=mode)


async def test_two_workers_serve_both_eras_and_stop_on_sigterm(redis_server: RedisServer) -> None:
    observe = two_free_ports()
    async with workers(redis_server.url, observe) as (process, url, text):
        pids = [int(p) for p in re.findall(r"\d+", text.split("workers (pids", 1)[1])[:2]]
        for index in range(2):
            assert f"metrics and dashboard at http://127.0.0.1:{observe + index}" in text
        per_worker = [0, 0]
        made = 0
        async with httpx.AsyncClient() as http:
            # Sessions of both eras, eight at a time, until each worker has
            # served some (bounded: the kernel wakes both for each connection).
            for _ in range(10):
                async with trio.open_nursery() as nursery:
                    for i in range(8):
                        nursery.start_soon(_ticker, url, "legacy" if i % 2 else "2026-07-28")
                made += 8
                per_worker = [
                    ticker_calls((await http.get(f"http://127.0.0.1:{observe + i}/metrics")).text)
                    for i in range(2)
                ]
                if all(per_worker):
                    break
        assert all(per_worker), per_worker
        assert sum(per_worker) == made  # every call counted by the worker that ran it
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(3 + 5 + 2):  # --graceful-timeout + the parent's margin
            assert await process.wait() == 0
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


async def test_a_worker_that_dies_stops_the_server(redis_server: RedisServer) -> None:
    async with workers(redis_server.url, two_free_ports()) as (process, _, text):
        pid = int(re.findall(r"\d+", text.split("workers (pids", 1)[1])[0])
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(15):
            assert await process.wait() == 1


def _refused(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, early: bool = False
) -> str:
    """The one-line refusal; ``early``: before the Redis store is even set up."""
    proc = subprocess.run(
        [*SERVE, *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=env or serve_env(),
    )
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert lines, proc.stderr
    assert lines[-1].startswith("flowkit"), proc.stderr
    assert "Traceback" not in proc.stderr
    if early:
        assert "sharing state through Redis" not in proc.stderr, proc.stderr
    return lines[-1]


@pytest.mark.parametrize(
    ("value", "fragment"), [("0", "must be at least 1, got 0"), ("x", "'x' is not a whole number")]
)
def test_bad_worker_counts_are_one_line_errors(value: str, fragment: str) -> None:
    line = _refused("--demo", "--workers", value)
    assert "--workers" in line, line
    assert fragment in line, line


def test_two_workers_without_redis_are_refused() -> None:
    line = _refused("--demo", "--port", "0", "--workers", "2")
    assert "--workers N > 1 needs --redis" in line, line


@pytest.mark.parametrize("sharing", [["--workers", "1"], ["--workers", "2"]])
def test_shared_state_without_request_state_keys_is_refused(sharing: list[str]) -> None:
    """Refused before anything connects (the URL is never dialled), whether or not a tool asks:
    a tool added at run time may ask, and every instance must open another's requestState."""
    keyless = {k: v for k, v in serve_env().items() if k != "FLOWKIT_REQUEST_STATE_KEYS"}
    line = _refused(
        "--demo",
        "--port",
        "0",
        *sharing,
        "--redis",
        "redis://127.0.0.1:1/0",
        env=keyless,
        early=True,
    )
    assert "--redis and --workers N > 1 need FLOWKIT_REQUEST_STATE_KEYS" in line, line
    assert "flowkit keygen" in line, line


def test_keygen_prints_a_key_the_server_takes() -> None:
    made = subprocess.run(
        [*SERVE[:-1], "keygen"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    key = made.stdout.strip()
    assert request_state_keys(key) == (base64.urlsafe_b64decode(key + "="),)
    again = subprocess.run([*SERVE[:-1], "keygen"], capture_output=True, text=True, timeout=30)
    assert again.stdout.strip() != key  # fresh each time


async def test_workers_shut_down_when_their_parent_is_killed(redis_server: RedisServer) -> None:
    async with workers(redis_server.url, two_free_ports()) as (process, _, text):
        pids = [int(p) for p in re.findall(r"\d+", text.split("workers (pids", 1)[1])[:2]]
        process.kill()
        await process.wait()
        # Bounded: one parent check (1 s) plus the graceful shutdown (3 s).
        for _ in range(150):
            if not any(_running(pid) for pid in pids):
                break
            await trio.sleep(0.1)
        assert not any(_running(pid) for pid in pids)


def _running(pid: int) -> bool:
    """The orphaned worker still runs (exited: gone, or a zombie nobody reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_observe_ports_beyond_65535_are_refused() -> None:
    line = _refused(
        "--demo", "--workers", "2", "--redis", "redis://127.0.0.1:1/0",
        "--observe-bind", "127.0.0.1:65535",
    )  # fmt: skip
    assert "2 workers need ports up to 65536" in line, line
