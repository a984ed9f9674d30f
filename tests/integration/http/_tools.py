"""A test server: the demo tools plus tools that fail, hang and report state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import trio

from flowkit_http import MCPServer, Progress, Result, StreamSettings
from flowkit_http._demo import analyze_document, sensor_feed, ticker


@attrs.define
class Probe:
    """What the slow tools did, observed from the test."""

    started: trio.Event = attrs.Factory(trio.Event)
    stopped: trio.Event = attrs.Factory(trio.Event)
    steps: int = 0
    cancelled: bool = False


def make_server(
    *, keepalive: float = 15.0, max_queued_events: int = 256, max_queued_logs: int = 64
) -> tuple[MCPServer, Probe]:
    probe = Probe()
    server = MCPServer(
        name="test",
        settings=StreamSettings(
            keepalive_interval=keepalive,
            max_queued_events=max_queued_events,
            max_queued_logs=max_queued_logs,
        ),
    )
    server.tool(ticker)
    server.tool(analyze_document)
    server.tool(policy="conflate")(sensor_feed)

    @server.tool
    async def boom(after: int = 1) -> AsyncIterator[int]:
        """Fail after a few items."""
        for i in range(after):
            yield i
        raise RuntimeError("the sensor caught fire")

    @server.tool
    async def forever(interval_ms: int = 10) -> AsyncIterator[Progress]:
        """Tick until cancelled, recording what happened."""
        probe.started.set()
        try:
            while True:
                probe.steps += 1
                yield Progress(f"step {probe.steps}")
                await trio.sleep(interval_ms / 1000)
        except trio.Cancelled:
            probe.cancelled = True
            raise
        finally:
            probe.stopped.set()

    @server.tool
    async def quiet(seconds: float) -> dict[str, Any]:
        """Say nothing for a while, then answer."""
        await trio.sleep(seconds)
        return {"slept": seconds}

    @server.tool(policy="conflate")
    async def chatty(count: int) -> AsyncIterator[Any]:
        """Logs and progress as fast as possible (for the conflate policy)."""
        from flowkit_http import Partial

        for i in range(1, count + 1):
            yield Partial({"i": i}, message=f"item {i}", total=count)
            if i % 100 == 0:
                await trio.sleep(0.001)
        yield Result(structured={"count": count})

    return server, probe
