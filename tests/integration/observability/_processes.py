"""Real processes for the system tests: ``flowkit serve`` and its neighbours, stopped by PID."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Output:
    """A running process: what it printed (stdout and stderr), growing while it runs."""

    def __init__(self, proc: trio.Process) -> None:
        self.data = b""
        self._proc = proc

    def text(self) -> str:
        return self.data.decode(errors="replace")

    def signal(self, signum: int) -> None:
        self._proc.send_signal(signum)

    async def wait(self) -> int:
        return await self._proc.wait()


@asynccontextmanager
async def process(
    command: Sequence[str], *, ready: bytes, cwd: Path | None = None
) -> AsyncIterator[Output]:
    """Run ``command`` until the block ends, once it printed ``ready``.

    Yields its output, which keeps growing (read after the block: all of it).
    Stopped with SIGTERM by its PID (SIGKILL if it does not exit in 10 s).
    """
    proc = await trio.lowlevel.open_process(
        list(command), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = Output(proc)
    try:
        assert proc.stdout is not None
        with trio.fail_after(60):
            while ready not in output.data:
                chunk = await proc.stdout.receive_some()
                assert chunk, f"{command[0]} exited before it was ready:\n{output.text()}"
                output.data += chunk
        async with trio.open_nursery() as nursery:
            # Keep reading so a chatty process never blocks on a full pipe.
            nursery.start_soon(_drain, proc.stdout, output)
            try:
                yield output
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                with trio.move_on_after(10):
                    await proc.wait()
                nursery.cancel_scope.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _drain(stream: trio.abc.ReceiveStream, output: Output) -> None:
    while chunk := await stream.receive_some():
        output.data += chunk


ROOT = Path(__file__).resolve().parents[3]


@asynccontextmanager
async def flowkit_serve(*args: str) -> AsyncIterator[str]:
    """``flowkit serve ARGS`` on a free port, from the repository root; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "flowkit_http", "serve", "--port", str(port), *args]
    async with process(command, ready=b"serving MCP at", cwd=ROOT):
        yield f"http://127.0.0.1:{port}"
