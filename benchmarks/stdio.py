"""One stream's notifications/s over stdio: flowkit vs the official MCP SDK server and FastMCP.

Every server is launched as a subprocess speaking MCP on its stdin and
stdout: ``flowkit serve --stdio --demo``, ``benchmarks._official --stdio``
(the SDK's ``MCPServer.run("stdio")``) and ``benchmarks._fastmcp --stdio``
(FastMCP's ``run("stdio")``, in its own venv), with the same ``ticker`` tool. The
same raw reader (below: 64 KiB reads, one ``in`` test per progress line, the
other lines parsed) does the 2025-11-25 handshake, calls
``ticker(count=50000)`` with a progressToken and reads until the response,
alternating servers, ``--repeat`` times; the table shows medians::

    python -m benchmarks.stdio [--count N] [--repeat K] [--quick]

* notifications/s: ``count`` / (response received - request sent);
* start-up: process launch to the ``initialize`` response;
* peak RSS: the server's ``VmHWM`` after the call.

The last line is ``ratio=<flowkit/official> flowkit=<notif/s> official=<notif/s>
fastmcp=<notif/s>``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import trio

from . import _servers
from ._util import median, table

ROOT = Path(__file__).resolve().parent.parent
SERVERS = {
    "flowkit": lambda: [sys.executable, "-m", "flowkit_http", "serve", "--stdio", "--demo"],
    "official": lambda: [sys.executable, "-m", "benchmarks._official", "--stdio"],
    "fastmcp": lambda: [_servers.fastmcp_python(), "-m", "benchmarks._fastmcp", "--stdio"],
}
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


@dataclass
class Run:
    rate: float  # notifications/s
    startup_ms: float
    peak_rss_kib: int


class _Lines:
    """The raw reader: whole lines from a byte stream, 64 KiB at a time."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._tail = b""
        self._lines: list[bytes] = []
        self._next = 0

    async def next(self) -> bytes:
        while self._next >= len(self._lines):
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                raise EOFError("the server closed stdout")
            *lines, self._tail = (self._tail + chunk).split(b"\n")
            self._lines, self._next = lines, 0
        line = self._lines[self._next]
        self._next += 1
        return line


async def _response(lines: _Lines, request_id: int) -> tuple[dict[str, object], int]:
    """Read to the response to ``request_id``; returns it and the progress lines seen."""
    progress = 0
    while True:
        line = await lines.next()
        if b"notifications/progress" in line:
            progress += 1
            continue
        message = orjson.loads(line)
        if message.get("id") == request_id:
            return message, progress


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def _one(name: str, count: int) -> Run:
    started = trio.current_time()
    process = await trio.lowlevel.open_process(
        SERVERS[name](),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        lines = _Lines(process.stdout)
        await process.stdin.send_all(orjson.dumps(_INITIALIZE) + b"\n")
        await _response(lines, 1)
        startup = trio.current_time() - started
        await process.stdin.send_all(
            orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + b"\n"
        )
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "ticker",
                "arguments": {"count": count},
                "_meta": {"progressToken": "bench"},
            },
        }
        sent = trio.current_time()
        await process.stdin.send_all(orjson.dumps(call) + b"\n")
        response, progress = await _response(lines, 2)
        wall = trio.current_time() - sent
        if progress != count or "result" not in response:
            raise RuntimeError(f"{name}: {progress} of {count} notifications, {response}")
        rss = _peak_rss_kib(process.pid)
        await process.stdin.aclose()
        with trio.move_on_after(10):
            await process.wait()
        return Run(count / wall, startup * 1000, rss)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await process.stdout.aclose()


def main(argv: list[str] | None = None) -> dict[str, list[Run]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--servers", default=_servers.DEFAULT_SERVERS)
    parser.add_argument("--quick", action="store_true", help="count=3000, repeat=1 (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.repeat = 3000, 1
    runs: dict[str, list[Run]] = {name: [] for name in _servers.selected(args.servers)}
    for _ in range(args.repeat):
        for name in runs:
            runs[name].append(trio.run(_one, name, args.count))
    rows = [
        [
            name,
            median([r.rate for r in done]),
            median([r.startup_ms for r in done]),
            max(r.peak_rss_kib for r in done) / 1024,
        ]
        for name, done in runs.items()
    ]
    print(table(["server (stdio)", "notifications/s", "start-up ms", "peak RSS MiB"], rows))
    by = {str(row[0]): float(row[1]) for row in rows}
    flowkit, official = by.get("flowkit", float("nan")), by.get("official", float("nan"))
    print(
        f"ratio={flowkit / official:.2f} {_servers.peer_figures(by)} "
        f"(notifications/s, one stream, count={args.count})"
    )
    return runs


if __name__ == "__main__":
    main()
