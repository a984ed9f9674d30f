"""The suite's own child processes are reaped on every path (no ResourceWarning later).

A :class:`trio.Process` or :class:`subprocess.Popen` dropped while running
warns ``subprocess N is still running`` (and leaks its pidfd) when the
garbage collector runs, failing whichever later test that happens in.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from ..._system import stop_process
from ._server import RedisServer

_DEAF = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"


async def test_a_child_deaf_to_sigterm_is_killed_and_reaped_even_when_cancelled() -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", _DEAF], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        seen = b""
        while not seen.endswith(b"\n"):  # SIGTERM is ignored from here
            seen += await process.stdout.receive_some()
        with trio.CancelScope() as scope:
            scope.cancel()  # as when a test's fail_after expired: the cleanup must still reap
            await stop_process(process, grace=0.5)
        assert process.returncode == -9
        with pytest.raises(trio.ClosedResourceError):
            await process.stdout.receive_some()
    finally:
        process.kill()  # a no-op once reaped; else this test does not leak what it checks
        await process.wait()


def test_a_redis_server_that_fails_to_start_is_not_left_behind(
    redis_binary: str, tmp_path: Path
) -> None:
    server = RedisServer(redis_binary, tmp_path)
    try:
        with socket.socket() as taken:  # its port is bound (not listening): redis-server exits
            taken.bind(("127.0.0.1", server.port))
            with pytest.raises(RuntimeError, match="redis-server exited"):
                server.start()
        assert server.process is None
    finally:
        server.stop()  # harmless once stopped (no kill of a reaped PID)
