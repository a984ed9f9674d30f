"""What the multi-instance tests stand up: ``flowkit serve`` processes, workers, nginx in front.

Shared by test_serve, test_control, test_control_sdk, test_workers and
test_demo_tail, so each starts, stops and fronts its instances the same way:
real processes stopped by PID, nginx round-robin without stickiness, and the
small polls (no call left running, which worker counted what) their
assertions wait on with a deadline.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from flowkit.mcp import ToolContext
from flowkit_http import MCPApp

from ..._system import free_port, read_until, running_nginx, stop_process
from ._server import REQUEST_STATE_KEYS

SERVE = [sys.executable, "-m", "flowkit_http", "serve"]


@asynccontextmanager
async def flowkit_serve(redis_url: str | None, *, env_url: bool = False) -> AsyncIterator[str]:
    """One ``flowkit serve --demo`` process sharing state through ``redis_url``; yields its base URL.

    ``None``: the in-memory default (the control: instances share nothing).
    """
    async with serve_process(redis_url, env_url=env_url) as (base, _):
        yield base


@asynccontextmanager
async def serve_process(
    redis_url: str | None, *, env_url: bool = False, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, trio.Process]]:
    """:func:`flowkit_serve`, yielding the process too (a test may kill it); ``env`` added."""
    port = free_port()
    command = [*SERVE, "--demo", "--port", str(port)]
    env = {
        **{k: v for k, v in os.environ.items() if k != "FLOWKIT_REDIS_URL"},
        **REQUEST_STATE_KEYS,
        **(env or {}),
    }
    if redis_url is not None and env_url:
        env["FLOWKIT_REDIS_URL"] = redis_url
    elif redis_url is not None:
        command += ["--redis", redis_url]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        output = await read_until(process, b"serving MCP at", 20)
        shared = b"sharing state through Redis at redis://127.0.0.1" in output
        assert shared == (redis_url is not None)
        yield f"http://127.0.0.1:{port}", process
        if process.returncode is not None:
            return  # the test killed it
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            assert await process.wait() == 0
    finally:
        await stop_process(process)


ROUND_ROBIN = """
    upstream flowkit {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://flowkit;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;  # the client's, not "flowkit" (Host checks)
        }}
    }}
"""


@asynccontextmanager
async def round_robin(
    nginx_binary: str, tmp_path: Path, bases: Sequence[str]
) -> AsyncIterator[str]:
    """nginx round-robin (per request, no stickiness) in front of ``bases``; yields its base URL.

    An upstream that refuses connections (a killed instance) is skipped:
    ``proxy_next_upstream error timeout`` is nginx's default.
    """
    servers = "\n".join(f"        server {base.removeprefix('http://')};" for base in bases)
    port = free_port()
    http = ROUND_ROBIN.format(servers=servers, port=port)
    async with running_nginx(nginx_binary, tmp_path, http, port) as proxy:
        yield proxy


@asynccontextmanager
async def nginx_front(
    redis_url: str | None, nginx_binary: str, tmp_path: Path
) -> AsyncIterator[str]:
    """Three ``flowkit serve --demo`` behind nginx round-robin; yields nginx's base URL."""
    async with AsyncExitStack() as stack:
        bases = [await stack.enter_async_context(flowkit_serve(redis_url)) for _ in range(3)]
        yield await stack.enter_async_context(round_robin(nginx_binary, tmp_path, bases))


def two_free_ports() -> int:
    """A port P with P and P + 1 free (worker 0's and worker 1's --observe-bind).

    Taken below the kernel's ephemeral range: a port found free there by
    binding port 0 may be handed to any outgoing connection (the suite makes
    thousands) before the workers bind it, which failed a run once with
    "Address already in use" on P + 1. Below the range nothing but an
    explicit bind takes a port.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(max(1024, low - 12_000), low - 1)
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two consecutive free ports")


def serve_env() -> dict[str, str]:
    """The test's environment without any ``FLOWKIT_*`` setting but the request-state keys."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")},
        **REQUEST_STATE_KEYS,
    }


@asynccontextmanager
async def workers(redis_url: str, observe: int) -> AsyncIterator[tuple[trio.Process, str, str]]:
    """``flowkit serve --demo --workers 2 --port 0``; yields the parent, its URL and its stdout."""
    command = [*SERVE, "--demo", "--port", "0", "--workers", "2", "--redis", redis_url]
    command += ["--observe-bind", f"127.0.0.1:{observe}"]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, env=serve_env())
    try:
        text = (await read_until(process, b"workers (pids", 30)).decode()
        url = re.findall(r"serving MCP at (\S+)", text)
        assert len(url) == 1, text  # printed once, with the real port
        yield process, url[0], text
    finally:
        await stop_process(process)


def ticker_calls(metrics: str, outcome: str | None = None) -> int:
    """``ticker``'s ended calls in a ``/metrics`` page (of one ``outcome``, or all)."""
    label = "" if outcome is None else f'outcome="{outcome}"'
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("flowkit_tool_calls_total{")
        and 'tool="ticker"' in line
        and label in line
    )


def active_calls(metrics: str) -> int:
    """Tool calls running now, in a ``/metrics`` page."""
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("flowkit_active_calls{")
    )


async def until_idle(app: MCPApp) -> None:
    """Until no call runs on ``app`` (bounded by the test's deadline)."""
    while True:  # polled: the app has no event for "the last call ended"
        if not app.statistics():
            return
        await trio.sleep(0.01)


FORM = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


async def greet(ctx: ToolContext) -> str:
    """One question, then a greeting."""
    answer = await ctx.elicit("Name?", FORM)
    return f"Hello, {(answer.content or {}).get('name')}!"
