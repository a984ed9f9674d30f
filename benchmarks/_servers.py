"""Server subprocesses for the benchmarks: start on 127.0.0.1, measure, stop by PID.

Each benchmark starts the servers it compares as child processes on free
loopback ports (never a fixed port, never anything but 127.0.0.1), waits until
they accept an MCP ``initialize``, reads their memory from ``/proc/<pid>``,
and stops them by the PID it started (SIGTERM, then SIGKILL after a grace
period).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

import trio

from ._client import ClientError, open_session

HOST = "127.0.0.1"
PATH = "/mcp"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def flowkit_command(port: int, extra: Sequence[str] = ()) -> list[str]:
    """``flowkit serve --demo`` on ``port`` (the README's command).

    ``extra`` replaces ``--demo``, e.g. ``["benchmarks._flowkit_tools:server"]``.
    """
    exe = shutil.which("flowkit", path=os.path.dirname(sys.executable))
    base = [exe] if exe else [sys.executable, "-m", "flowkit_http"]
    target = list(extra) or ["--demo"]
    return [*base, "serve", *target, "--host", HOST, "--port", str(port)]


FLOWKIT_TOOLS = ["benchmarks._flowkit_tools:server"]


def flowkit_room(n: int) -> tuple[list[str], dict[str, str]]:
    """Arguments and environment for a flowkit server that holds ``n`` sessions, each
    with a call open: the demo tools with the session, connection and calls-in-flight
    caps (1,000, 1,000 and 1,024 by default) lifted above ``n``."""
    room = str(n + 64)
    extra = [*FLOWKIT_TOOLS, "--max-sessions", room, "--max-connections", room]
    return extra, {"FLOWKIT_BENCH_MAX_CALLS": room}


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def official_command(port: int, extra: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "benchmarks._official", "--host", HOST, "--port", str(port)]


# FastMCP pins its own ``mcp`` and server stack, so it gets a venv of its own.
# One FastMCP environment for the benchmarks and the client's tests
# (tests/integration/client/test_fastmcp.py uses this function).
FASTMCP_VENV = os.path.join(ROOT, ".cache", "fastmcp")
FASTMCP = "fastmcp==4.2.3"


def fastmcp_python() -> str:
    """The FastMCP venv's Python, creating the venv from PyPI on first use."""
    python = os.path.join(FASTMCP_VENV, "bin", "python")
    stamp = os.path.join(FASTMCP_VENV, f".installed-{FASTMCP}")
    if not os.path.exists(stamp):
        subprocess.run([sys.executable, "-m", "venv", FASTMCP_VENV], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", FASTMCP], check=True, timeout=900
        )
        open(stamp, "w").close()
    return python


def selected(servers: str) -> list[str]:
    """The ``--servers`` list, less FastMCP (with a note on stderr) if its venv cannot be made.

    The default compares flowkit with both peers; where PyPI is out of reach the
    FastMCP venv cannot be created, and the run goes on with the other servers
    rather than failing.
    """
    names = [n for n in servers.split(",") if n]
    if "fastmcp" in names:
        try:
            fastmcp_python()
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"fastmcp skipped: its venv could not be made ({exc})", file=sys.stderr)
            names.remove("fastmcp")
    return names


def peer_figures(by: dict[str, float], fmt: str = ".0f") -> str:
    """``flowkit=<x> official=<y> fastmcp=<z>`` for a ratio line (peers that ran)."""
    return " ".join(f"{n}={by[n]:{fmt}}" for n in ("flowkit", *PEERS) if n in by)


def fastmcp_command(port: int, extra: Sequence[str] = ()) -> list[str]:
    return [fastmcp_python(), "-m", "benchmarks._fastmcp", "--host", HOST, "--port", str(port)]


def floor_command(port: int, extra: Sequence[str] = ()) -> list[str]:
    """Bare hypercorn with canned MCP-shaped replies (``benchmarks._floor``): the stack's floor."""
    return [sys.executable, "-m", "benchmarks._floor", "--host", HOST, "--port", str(port)]


COMMANDS = {
    "flowkit": flowkit_command,
    "official": official_command,
    "fastmcp": fastmcp_command,
    "floor": floor_command,
}
PEERS = ("official", "fastmcp")
DEFAULT_SERVERS = "flowkit,official,fastmcp"


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (KiB) of a live process."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except FileNotFoundError:
        pass
    return out


def reset_peak(pid: int) -> None:
    """Reset the process's VmHWM to its current RSS (Linux >= 4.0), if allowed."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    started_rss_kib: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        return _proc_status(self.pid).get("VmRSS", 0)

    def peak_rss_kib(self) -> int:
        return _proc_status(self.pid).get("VmHWM", 0)

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used (``/proc/PID/stat``)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-n:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


async def _wait_ready(server: Server, within: float) -> None:
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} server exited:\n{server.log_tail()}")
        try:
            s = await open_session(HOST, server.port, PATH)
        except (OSError, ClientError) as exc:
            last = exc
            await trio.sleep(0.05)
            continue
        # End the probe's session: left open, it would count against the
        # server's session cap (1,000 by default) and make the 1,000th
        # session of a C=1000 run get 503.
        await s.delete()
        await s.aclose()
        return
    raise RuntimeError(f"{server.name} server not ready after {within}s: {last}")


_STATE_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def start(
    name: str,
    extra: Sequence[str] = (),
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> Server:
    """Start server ``name`` (a key of ``COMMANDS``) and wait until it serves MCP."""
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by Server.stop)
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    # Instances of one run share a request-state key, as a deployment's must
    # (``flowkit serve --redis`` and ``--workers`` refuse to start without one).
    full_env.setdefault("FLOWKIT_REQUEST_STATE_KEYS", _STATE_KEY)
    proc = subprocess.Popen(
        COMMANDS[name](port, extra),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=ROOT,
    )
    server = Server(name, port, proc, log)
    try:
        trio.run(_wait_ready, server, timeout)
    except BaseException:
        server.stop()
        raise
    time.sleep(0.3)  # let start-up garbage settle before the idle reading
    server.started_rss_kib = server.rss_kib()
    return server


@contextlib.contextmanager
def running(
    name: str, extra: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[Server]:
    server = start(name, extra, env=env)
    try:
        yield server
    finally:
        server.stop()


def available(name: str) -> str | None:
    """None if server ``name`` starts and serves here, else why not (for skips)."""
    try:
        with running(name):
            return None
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
