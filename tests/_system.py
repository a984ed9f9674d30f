"""Programs the system tests run next to flowkit, installed by the project's own script.

``.ci/debian.sh BINARY PACKAGE...`` installs Debian's package when the binary
is missing (nginx for the reverse-proxy tests, redis-server for the shared
store, prometheus for the scrape test, chromium for the dashboard test) and
prints the binary's path. nginx is started here too (:func:`running_nginx`), and
every test's child process is stopped by :func:`stop_process`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parents[1]


def debian_binary(binary: str, *packages: str, needed_by: str) -> str:
    """Path of ``binary``, installing the first of ``packages`` that apt-get has.

    Fails (never skips) when it cannot be installed: the guarantees these
    programs check are part of the suite.
    """
    script = ROOT / ".ci" / "debian.sh"
    try:
        done = subprocess.run(
            [str(script), binary, *packages],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {script} to install {binary}: {exc}")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(
            f"{binary} is required by {needed_by} and {script} could not install it "
            f"(exit {done.returncode}); apt-get must be available, or install Debian's "
            f"{packages[0]} yourself.\n{done.stderr[-2000:]}"
        )
    return done.stdout.strip().splitlines()[-1]


_NGINX = """
daemon off;
master_process on;
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{http}
}}
"""


async def stop_process(
    process: trio.Process, *, grace: float = 10, first: signal.Signals = signal.SIGTERM
) -> None:
    """Stop ``process`` by its PID and reap it, whatever state the caller is in.

    ``first`` (SIGTERM), up to ``grace`` seconds to exit, then SIGKILL; then its pipes are
    closed. Shielded: a caller being cancelled (a ``fail_after`` that expired)
    must still reap, else the dropped :class:`trio.Process` is garbage-collected
    while running and ``ResourceWarning: subprocess N is still running`` (and
    its unclosed pidfd) fails whichever later test happens to run the collector.
    """
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(first)
            with trio.move_on_after(grace):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                await pipe.aclose()


async def read_until(process: trio.Process, marker: bytes, seconds: float) -> bytes:
    """A process's stdout up to and including ``marker`` (what it printed so far).

    Fails the test if the process closes its stdout first (its output is the
    message), or if ``marker`` takes longer than ``seconds``.
    """
    assert process.stdout is not None
    output = b""
    with trio.fail_after(seconds):
        while marker not in output:
            chunk = await process.stdout.receive_some()
            assert chunk, output.decode()
            output += chunk
    return output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int) -> None:
    """Until something accepts connections on 127.0.0.1:``port`` (bound it with a deadline)."""
    while True:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            await trio.sleep(0.02)
            continue
        await stream.aclose()
        return


@asynccontextmanager
async def listening_process(
    command: Sequence[str], port: int, *, start_within: float
) -> AsyncIterator[None]:
    """A server subprocess (its output discarded), once it accepts on ``port``; stopped by PID."""
    process = await trio.lowlevel.open_process(
        list(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with trio.fail_after(start_within):
            await wait_for_port(port)
        yield
    finally:
        await stop_process(process)


def _read_pid_file(path: Path) -> str:
    """The pid in ``path`` once its line is complete, else ``""`` (absent or being written)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    return text.strip() if text.endswith("\n") else ""


@asynccontextmanager
async def running_nginx(binary: str, tmp: Path, http: str, port: int) -> AsyncIterator[str]:
    """nginx on 127.0.0.1:``port`` with ``http`` inside its ``http {}`` block; yields its URL.

    pid and logs live in ``tmp``; stopped by its PID (SIGQUIT, then kill).
    """
    user = "user root root;" if os.geteuid() == 0 else ""
    config = tmp / "nginx.conf"
    config.write_text(_NGINX.format(tmp=tmp, user=user, http=http))
    process = await trio.lowlevel.open_process(
        [binary, "-p", str(tmp), "-c", str(config), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    pid = None
    try:
        # nginx creates its pid file, then writes it: wait for a whole line, not the file.
        while not (written := _read_pid_file(tmp / "nginx.pid")):
            if process.poll() is not None:
                raise AssertionError(f"nginx exited: {(tmp / 'error.log').read_text()}")
            await trio.sleep(0.02)
        pid = int(written)
        await wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        await stop_process(process, grace=5, first=signal.SIGQUIT)  # graceful, then kill
    assert pid == process.pid
