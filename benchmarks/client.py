"""One progress stream read by the flowkit client vs the official SDK client, in one run.

One flowkit server (``flowkit serve --demo``, a subprocess on 127.0.0.1,
started by ``benchmarks._servers``) serves both clients, which run in this
process one after the other: ``flowkit_client`` on trio, and the official
MCP SDK's ``mcp.Client`` (2.x, on anyio/asyncio) with a
``progress_callback``. Each run opens a client, warms it with
``ticker(count=10)``, then times ``ticker(count=N)``, whose every progress
notification the tool delivers (lossless), from the call to its result; in
both eras (2026-07-28 after ``server/discover``, and the 2025-11-25
handshake, the official client's ``mode="legacy"``), alternating clients,
``--repeat`` times; the table shows medians::

    python -m benchmarks.client [--count N] [--repeat K] [--quick]

* events/s: ``N`` / (result received - call started);
* client CPU per event: this process's user + system CPU over the timed call,
  divided by ``N`` (the server runs in its own process, so this is the
  client's alone);
* client CPU (s/s): the same CPU per wall second (1.0: the client is the
  bottleneck, not the server).

The last line is ``ratio=<flowkit/official> flowkit=<events/s> official=<events/s>``
for the 2026-07-28 era (what both clients speak by default).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import trio

from . import _servers
from ._client import cpu_seconds
from ._util import median, table

ERAS = {"2026-07-28": "auto", "2025-11-25": "legacy"}  # ours -> the official client's mode
CLIENTS = ["flowkit", "official"]


@dataclass
class Run:
    rate: float  # events/s
    cpu_us: float  # client CPU microseconds per event
    cpu_load: float  # client CPU seconds per wall second


def _timed(count: int, seen: int, wall: float, cpu: float, who: str) -> Run:
    if seen != count:
        raise RuntimeError(f"{who}: {seen} of {count} progress notifications")
    return Run(count / wall, cpu / count * 1e6, cpu / wall)


async def _flowkit(url: str, era: str, count: int) -> Run:
    from flowkit_client import Progress, open_client

    async with open_client(url, era=era) as client:  # type: ignore[arg-type]
        await client.call("ticker", {"count": 10})
        seen = 0
        c0, t0 = cpu_seconds(), time.perf_counter()
        async with client.call_tool("ticker", {"count": count}) as call:
            async for event in call:
                if isinstance(event, Progress):
                    seen += 1
            result = await call.result()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if result.structured != {"count": count}:
        raise RuntimeError(f"flowkit client: {result}")
    return _timed(count, seen, wall, cpu, "flowkit client")


async def _official(url: str, era: str, count: int) -> Run:
    from mcp import Client

    seen = 0

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        nonlocal seen
        seen += 1

    async with Client(url, mode=ERAS[era]) as client:  # type: ignore[arg-type]
        await client.call_tool("ticker", {"count": 10})
        c0, t0 = cpu_seconds(), time.perf_counter()
        result = await client.call_tool("ticker", {"count": count}, progress_callback=on_progress)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if result.structured_content != {"count": count}:
        raise RuntimeError(f"official client: {result}")
    return _timed(count, seen, wall, cpu, "official client")


def _one(name: str, url: str, era: str, count: int) -> Run:
    if name == "flowkit":
        return trio.run(_flowkit, url, era, count)
    run: Callable[[str, str, int], Awaitable[Run]] = _official
    return anyio.run(run, url, era, count, backend="asyncio")


def main(argv: list[str] | None = None) -> dict[tuple[str, str], list[Run]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="count=2000, repeat=1 (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.repeat = 2000, 1
    runs: dict[tuple[str, str], list[Run]] = {(c, e): [] for e in ERAS for c in CLIENTS}
    with _servers.running("flowkit") as server:
        url = f"http://{_servers.HOST}:{server.port}{_servers.PATH}"
        for _ in range(args.repeat):
            for era in ERAS:
                for name in CLIENTS:
                    runs[name, era].append(_one(name, url, era, args.count))
    rows = [
        [
            name,
            era,
            args.count,
            len(done),
            median([r.rate for r in done]),
            median([r.cpu_us for r in done]),
            median([r.cpu_load for r in done]),
        ]
        for (name, era), done in runs.items()
    ]
    header = ["client", "era", "events", "runs", "events/s", "client CPU µs/event", "CPU (s/s)"]
    print(table(header, rows))
    flowkit = median([r.rate for r in runs["flowkit", "2026-07-28"]])
    official = median([r.rate for r in runs["official", "2026-07-28"]])
    print(
        f"ratio={flowkit / official:.2f} flowkit={flowkit:.0f} official={official:.0f} "
        f"(events/s of one progress stream, 2026-07-28, count={args.count})"
    )
    return runs


if __name__ == "__main__":
    main()
