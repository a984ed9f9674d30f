"""N slow request bodies against ``flowkit serve --demo``: memory, refusals, a good client's latency.

The attack of issue 20: N connections at once each announce a 4 MiB body,
send all of it but the last byte in 64 KiB writes, and then send nothing
more. Before the body budget, 1,000 of them took the server from 49 MB to
4.2 GB of RSS. For each N, a fresh server process::

    python -m benchmarks.slow_bodies [--connections 100,1000] [--quick]

Columns: attackers refused while sending (503 and closed: the budget);
server RSS at start-up, once every attacker has sent what it will (or was
refused), its peak, and 2 s after the attackers closed; the median and
slowest of 5 ``initialize`` requests of a well-behaved client made during
the attack. The last line: ``rss_growth_mib=<during - start-up at the
largest N>``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import trio

from . import _servers
from ._client import raise_nofile
from ._util import outcome_table, percentile

BODY = 4 * 1024 * 1024
CHUNK = 64 * 1024
_INITIALIZE = (
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":'
    b'"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}'
)


@dataclass
class Outcome:
    connections: int
    refused: int
    idle_mib: float
    during_mib: float
    peak_mib: float
    after_mib: float
    good_p50_ms: float
    good_max_ms: float


HEADER = [
    "N",
    "refused",
    "RSS idle MiB",
    "RSS during MiB",
    "RSS peak MiB",
    "RSS after MiB",
    "good p50 ms",
    "good max ms",
]


def _head(port: int, length: int) -> bytes:
    return (
        f"POST {_servers.PATH} HTTP/1.1\r\nhost: {_servers.HOST}:{port}\r\n"
        "content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
        f"content-length: {length}\r\n\r\n"
    ).encode()


async def _good_request(port: int) -> float:
    """Seconds until a fresh connection's ``initialize`` gets its response head."""
    began = time.monotonic()
    async with await trio.open_tcp_stream(_servers.HOST, port) as stream:
        await stream.send_all(_head(port, len(_INITIALIZE)) + _INITIALIZE)
        received = b""
        while b"\r\n\r\n" not in received:
            data = await stream.receive_some(65536)
            if not data:
                break
            received += data
    return time.monotonic() - began


async def attack(port: int, n: int) -> tuple[list[trio.SocketStream], int]:
    """``n`` slow bodies at once; their connections (left open) and how many were refused.

    Returns once every attacker has sent all but the last byte or was
    refused (the server closed on it); ``benchmarks.attacks`` shares it.
    """
    streams: list[trio.SocketStream] = []
    refused = 0
    sent = 0
    chunk = b"x" * CHUNK

    async def one() -> None:
        nonlocal refused, sent
        stream = await trio.open_tcp_stream(_servers.HOST, port)
        streams.append(stream)
        try:
            await stream.send_all(_head(port, BODY))
            for _ in range(BODY // CHUNK - 1):
                await stream.send_all(chunk)
            await stream.send_all(chunk[:-1])
        except trio.BrokenResourceError:
            refused += 1
        else:
            sent += 1

    with trio.move_on_after(60):  # sends the server never reads block: bound them
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(one)
            while refused + sent < n:  # noqa: ASYNC110 (bounded poll)
                await trio.sleep(0.05)
    return streams, refused


async def _scenario(srv: _servers.Server, n: int) -> Outcome:
    port = srv.port
    streams, refused = await attack(port, n)
    latencies: list[float] = []
    await trio.sleep(1.0)  # let the server settle on what it holds
    during = srv.rss_kib()
    for _ in range(5):
        with trio.move_on_after(10):
            latencies.append(await _good_request(port))
    peak = srv.peak_rss_kib()
    for stream in streams:
        stream.socket.close()
    await trio.sleep(2.0)
    after = srv.rss_kib()
    return Outcome(
        n,
        refused,
        srv.started_rss_kib / 1024,
        during / 1024,
        peak / 1024,
        after / 1024,
        percentile(latencies, 50) * 1000,
        max(latencies, default=float("nan")) * 1000,
    )


def run_one(n: int) -> Outcome:
    # The cap on connections must not refuse the attackers before the budget does.
    with _servers.running("flowkit", ["--demo", "--max-connections", str(n + 64)]) as srv:
        return trio.run(_scenario, srv, n)


def main(argv: list[str] | None = None) -> list[Outcome]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="100,1000")
    parser.add_argument("--quick", action="store_true", help="N=20 (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.connections = "20"
    sizes = [int(x) for x in args.connections.split(",")]
    raise_nofile(max(sizes) + 256)
    outcomes = [run_one(n) for n in sizes]
    print(outcome_table(HEADER, outcomes))
    last = outcomes[-1]
    print(f"rss_growth_mib={last.during_mib - last.idle_mib:.1f} (N={last.connections})")
    return outcomes


if __name__ == "__main__":
    main()
