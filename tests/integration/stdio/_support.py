"""A raw stdio client: the server as a real subprocess, one JSON line at a time."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import trio

ROOT = Path(__file__).resolve().parents[3]
TARGET = "tests.integration.stdio._target:server"
MODERN = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def serve_command(*extra: str) -> list[str]:
    """``flowkit serve --stdio`` with this interpreter (``python -m flowkit_http``)."""
    return [sys.executable, "-m", "flowkit_http", "serve", "--stdio", *(extra or (TARGET,))]


class StdioPeer:
    """The client end of a server's stdin, stdout and stderr."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = bytearray()
        self.stderr = bytearray()
        self._stderr_grew = trio.Event()
        self.lines: list[bytes] = []  # every stdout line received, raw

    async def send(self, message: dict[str, Any] | bytes) -> None:
        data = message if isinstance(message, bytes) else orjson.dumps(message) + b"\n"
        assert self.process.stdin is not None
        await self.process.stdin.send_all(data)

    async def receive(self) -> dict[str, Any]:
        """The next message on stdout (every line must be one JSON object)."""
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise EOFError(bytes(self._buffer))
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        self.lines.append(line)
        message = orjson.loads(line)
        assert isinstance(message, dict)
        return message

    async def response(self, request_id: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read until the response to ``request_id``; returns it and what came before."""
        before: list[dict[str, Any]] = []
        while True:
            message = await self.receive()
            if message.get("id") == request_id and "method" not in message:
                return message, before
            before.append(message)

    async def response_after(
        self, message: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Send a request; read to its response (and what came before it)."""
        await self.send(message)
        return await self.response(message["id"])

    async def request(self, request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return (await self.response(request_id))[0]

    async def initialize(self) -> dict[str, Any]:
        reply = await self.request(
            0,
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        )
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self.stderr += chunk
            self._stderr_grew.set()
            self._stderr_grew = trio.Event()

    async def stderr_says(self, text: str) -> None:
        """Wait until stderr contains ``text``."""
        while text.encode() not in self.stderr:
            await self._stderr_grew.wait()

    async def close_stdin(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    def peak_rss(self) -> int:
        """The server's peak resident set, in bytes (Linux ``VmHWM``)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def rss(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024


@asynccontextmanager
async def stdio_server(*extra: str) -> AsyncIterator[StdioPeer]:
    """Launch ``flowkit serve --stdio`` and hand over its pipes; kill it if left running."""
    process = await trio.lowlevel.open_process(
        serve_command(*extra),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    peer = StdioPeer(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.read_stderr)
            try:
                yield peer
            finally:
                if process.returncode is None:
                    process.kill()
                await process.wait()
                nursery.cancel_scope.cancel()
    finally:
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                await stream.aclose()


def call(name: str, arguments: dict[str, Any], token: Any = None, modern: bool = False) -> Any:
    """``tools/call`` params."""
    meta: dict[str, Any] = dict(MODERN) if modern else {}
    if token is not None:
        meta["progressToken"] = token
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta:
        params["_meta"] = meta
    return params
