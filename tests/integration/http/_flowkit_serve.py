"""``flowkit serve`` as a subprocess: start it, wait for its "serving" lines, SIGTERM it.

Shared by the CLI tests (this interpreter's ``python -m flowkit_http``) and
the end-to-end test (the ``flowkit`` script of a venv the wheel is installed in).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from ._raw import JSON_HEADERS, initialize, request

_INITIALIZE = request(
    "initialize",
    protocolVersion="2025-11-25",
    capabilities={},
    clientInfo={"name": "raw", "version": "0"},
)

# What serve_and_stop lists: (result key, method, the field naming an item).
_LISTS = (
    ("tools", "tools/list", "name"),
    ("resources", "resources/list", "uri"),
    ("resourceTemplates", "resources/templates/list", "uriTemplate"),
    ("prompts", "prompts/list", "name"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


FLOWKIT = [sys.executable, "-m", "flowkit_http"]
"""The public command from this interpreter (the ``flowkit`` script runs the same ``main``)."""


@asynccontextmanager
async def running(
    args: list[str], cwd: Path, *, ready: int = 1, command: Sequence[str] = FLOWKIT
) -> AsyncIterator[tuple[trio.Process, bytearray]]:
    """``flowkit serve ARGS`` until ``ready`` "serving" lines are out; killed if left running.

    Yields the process and its output so far (stdout and stderr), which grows
    as :func:`read_until` reads more.
    """
    process = await trio.lowlevel.open_process(
        [*command, "serve", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output = bytearray()
        await read_until(process, output, lambda: output.count(b"flowkit: serving") >= ready)
        yield process, output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def read_until(process: trio.Process, output: bytearray, done: Callable[[], bool]) -> None:
    assert process.stdout is not None
    while not done():
        chunk = await process.stdout.receive_some()
        assert chunk, output.decode()
        output += chunk


async def stop(process: trio.Process, output: bytearray) -> int:
    """SIGTERM; the exit status, with the rest of the output read."""
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    with trio.fail_after(10):
        async for chunk in process.stdout:
            output += chunk
        return await process.wait()


async def serve_and_stop(
    args: list[str],
    cwd: Path,
    path: str = "/mcp",
    sessions: int = 1,
    command: Sequence[str] = FLOWKIT,
) -> dict[str, object]:
    port = free_port()
    async with running([*args, "--port", str(port)], cwd, command=command) as (process, output):
        url = f"http://127.0.0.1:{port}{path}"
        assert f"serving MCP at {url}".encode() in output
        async with httpx.AsyncClient() as client:
            for _ in range(sessions):
                headers = await initialize(client, url)
            listed: dict[str, list[str]] = {}
            for key, method, field in _LISTS:
                body = request(method, 2)
                result = (await client.post(url, content=body, headers=headers)).json()["result"]
                listed[key] = [item[field] for item in result[key]]
            one_more = await client.post(url, content=_INITIALIZE, headers=JSON_HEADERS)
        code = await stop(process, output)
    return {
        **listed,
        "code": code,
        "one more session": one_more.status_code,
    }
