"""Issue 20's attacks against ``flowkit serve --demo``: memory, CPU, a good client's latency.

One row per attack of the issue's table, each against a fresh server process
on 127.0.0.1, each bounded in count and time::

    python -m benchmarks.attacks [--quick] [--only slow_bodies,handshakes]

While an attack holds, a well-behaved client opens a session and calls
``ticker(count=3)`` every 0.2 s; its median and slowest latency are
reported. Columns: the attack and its size; what the server answered it;
server RSS at start-up, during the attack and at its peak; the server's CPU
(% of one core) during the attack; the good client's latency. The
handshake flood reports instead how long a new client was locked out. The
last line is ``ratio=<the slowest good call under attack / the slowest with
no attack>``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import trio

from . import _servers, slow_bodies
from ._client import ClientError, Session, open_session, raise_nofile
from ._util import outcome_table, percentile

HOST, PATH = _servers.HOST, _servers.PATH


@dataclass
class Outcome:
    attack: str
    size: int
    answered: str
    idle_mib: float
    during_mib: float
    peak_mib: float
    cpu_pct: float
    good_p50_ms: float
    good_max_ms: float


HEADER = [
    "attack",
    "N",
    "server's answer",
    "RSS idle MiB",
    "RSS during MiB",
    "RSS peak MiB",
    "CPU %",
    "good p50 ms",
    "good max ms",
]


async def _good_calls(port: int, seconds: float) -> list[float]:
    """A well-behaved client's latencies: new session + ``ticker(3)``, every 0.2 s."""
    latencies: list[float] = []
    deadline = trio.current_time() + seconds
    while trio.current_time() < deadline:
        began = time.monotonic()
        with trio.move_on_after(10):
            try:
                session = await open_session(HOST, port, PATH)
            except ClientError:  # refused (the handshake flood's cap): not a latency
                await trio.sleep(0.2)
                continue
            try:
                result = await session.call_tool("ticker", {"count": 3})
            finally:
                await session.delete()
                session.close()
            if result.ok:
                latencies.append(time.monotonic() - began)
        await trio.sleep(0.2)
    return latencies


async def _hang_up_after_first_event(port: int, arguments: dict[str, Any]) -> str:
    """Start ``ticker(arguments)`` in a new session, read its first event, hang up; its id."""
    session = await open_session(HOST, port, PATH)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "ticker", "arguments": arguments, "_meta": {"progressToken": 1}},
    }
    await session._send(session._request_bytes(orjson.dumps(body)))
    received = b""
    while b"\nid: " not in received and not received.startswith(b"id: "):
        received += await session._recv()
    session.close()  # a 2025-era disconnect: not a cancel
    line = received.split(b"id: ", 1)[1].split(b"\n", 1)[0]
    return f"{session.session_id} {line.decode()}"


async def _measure(
    srv: _servers.Server, seconds: float, attack: Callable[[], Awaitable[str]]
) -> tuple[str, float, float, list[float]]:
    """Run ``attack`` (it returns what the server answered), then hold it for ``seconds``.

    Returns the answer, the RSS during, the CPU % during the hold and the
    good client's latencies meanwhile.
    """
    answered = await attack()
    cpu, wall = srv.cpu_seconds(), time.monotonic()
    latencies = await _good_calls(srv.port, seconds)
    cpu_pct = 100 * (srv.cpu_seconds() - cpu) / (time.monotonic() - wall)
    return answered, srv.rss_kib() / 1024, cpu_pct, latencies


def _outcome(
    srv: _servers.Server, name: str, n: int, measured: tuple[str, float, float, list[float]]
) -> Outcome:
    answered, during, cpu, latencies = measured
    return Outcome(
        name,
        n,
        answered,
        srv.started_rss_kib / 1024,
        during,
        srv.peak_rss_kib() / 1024,
        cpu,
        percentile(latencies, 50) * 1000,
        max(latencies, default=float("nan")) * 1000,
    )


async def _none(srv: _servers.Server, n: int, hold: float) -> Outcome:
    async def nothing() -> str:
        return "-"

    return _outcome(srv, "none (baseline)", 0, await _measure(srv, hold, nothing))


async def _slow_bodies(srv: _servers.Server, n: int, hold: float) -> Outcome:
    streams: list[trio.SocketStream] = []

    async def attack() -> str:
        opened, refused = await slow_bodies.attack(srv.port, n)
        streams.extend(opened)
        return f"{refused} x 503"

    measured = await _measure(srv, hold, attack)
    for stream in streams:
        stream.socket.close()
    return _outcome(srv, "slow bodies (4 MiB - 1 B, then nothing)", n, measured)


async def _detached_tickers(srv: _servers.Server, n: int, hold: float) -> Outcome:
    async def attack() -> str:
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(_hang_up_after_first_event, srv.port, {"count": 10**12})
        return "paused, then cancelled after the grace"

    return _outcome(srv, "hung-up ticker(10**12) calls", n, await _measure(srv, hold, attack))


async def _huge_tokens(srv: _servers.Server, n: int, hold: float) -> Outcome:
    async def attack() -> str:
        refused = 0
        for _ in range(n):
            session = await open_session(HOST, srv.port, PATH)
            token = "x" * 1_000_000
            _, _, data = await session.post(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {
                        "name": "ticker",
                        "arguments": {"count": 10},
                        "_meta": {"progressToken": token},
                    },
                }
            )
            refused += b"-32602" in data
            session.close()
        return f"{refused} x -32602"

    return _outcome(srv, "1 MB progressToken", n, await _measure(srv, hold, attack))


async def _stalled_resumers(srv: _servers.Server, n: int, hold: float) -> Outcome:
    sockets: list[trio.socket.SocketType] = []

    async def attack() -> str:
        session_id, event_id = (await _hang_up_after_first_event(srv.port, {"count": 900})).split()
        await trio.sleep(1.0)  # the call files its 900 events and ends
        for _ in range(n):
            resumer = Session(HOST, srv.port, PATH, rcvbuf=4096)
            await resumer.connect()
            assert resumer.sock is not None
            sockets.append(resumer.sock)
            head = (
                f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{srv.port}\r\n"
                f"Accept: text/event-stream\r\nMcp-Session-Id: {session_id}\r\n"
                f"MCP-Protocol-Version: 2025-11-25\r\nLast-Event-ID: {event_id}\r\n\r\n"
            )
            await resumer._send(head.encode())  # and never read the replay
        return "replays in chunks"

    measured = await _measure(srv, hold, attack)
    for sock in sockets:
        sock.close()
    return _outcome(srv, "resumers that never read (4 KiB rcvbuf)", n, measured)


async def _handshakes(srv: _servers.Server, n: int, hold: float) -> Outcome:
    """``n`` initialize without ``notifications/initialized`` fill the cap: how long locked out."""

    async def attack() -> str:
        sessions = [Session(HOST, srv.port, PATH) for _ in range(n)]
        for session in sessions:
            await session.connect()
            await session.post(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "flood", "version": "0"},
                    },
                }
            )
            session.close()
        began = time.monotonic()
        while True:
            probe = Session(HOST, srv.port, PATH)
            try:
                await probe.initialize()
                await probe.delete()
                break
            except ClientError:  # 503 with Retry-After: the cap is full
                await trio.sleep(0.25)
            finally:
                probe.close()
        return f"new client locked out {time.monotonic() - began:.1f} s"

    return _outcome(srv, "unfinished handshakes", n, await _measure(srv, hold, attack))


ROWS: dict[str, tuple[Callable[[_servers.Server, int, float], Awaitable[Outcome]], int, int]] = {
    "none": (_none, 0, 0),
    "slow_bodies": (_slow_bodies, 300, 20),
    "detached": (_detached_tickers, 20, 5),
    "tokens": (_huge_tokens, 50, 5),
    "resumers": (_stalled_resumers, 20, 4),
    "handshakes": (_handshakes, 999, 50),
}
"""Each row: the scenario, its size in full mode, and in ``--quick`` mode."""


def _flags(name: str, n: int, quick: bool) -> list[str]:
    flags = ["--demo", "--max-connections", str(n + 64)]
    if name == "detached":
        flags += ["--detached-grace", "2" if quick else "5"]
    if name == "handshakes":
        flags += ["--max-sessions", str(n), "--handshake-timeout", "2" if quick else "10"]
    return flags


def run_one(name: str, quick: bool) -> Outcome:
    scenario, full, small = ROWS[name]
    n = small if quick else full
    hold = 1.0 if quick else 5.0
    with _servers.running("flowkit", _flags(name, n, quick)) as srv:
        outcome = trio.run(scenario, srv, n, hold)
        if not srv.alive():
            raise RuntimeError(f"the server died under {name}:\n{srv.log_tail()}")
        return outcome


def main(argv: list[str] | None = None) -> list[Outcome]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ROWS), help="rows, comma-separated")
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 s holds (CI)")
    args = parser.parse_args(argv)
    names = ["none", *(n for n in args.only.split(",") if n != "none")]
    raise_nofile(2048)
    outcomes = [run_one(name, args.quick) for name in names]
    print(outcome_table(HEADER, outcomes))
    baseline = outcomes[0].good_max_ms
    worst = max(o.good_max_ms for o in outcomes[1:]) if outcomes[1:] else baseline
    print(f"ratio={worst / baseline:.2f} (slowest good call under attack / with none)")
    return outcomes


if __name__ == "__main__":
    main()
