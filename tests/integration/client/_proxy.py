"""A TCP proxy that cuts every SSE response after a few KB (for resumption tests).

It forwards bytes both ways untouched, except that once a response's head
says ``text/event-stream`` it counts the bytes that follow, and at
``cut_after`` it sends the part up to the limit (most likely in the middle
of an event) and closes both connections: what a flaky network or a load
balancer's idle reaper does to a long stream. A new request on the
connection starts a new response, so JSON replies pass whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import attrs
import trio

_REQUEST_STARTS = (b"GET ", b"POST ", b"DELETE ")


@attrs.define
class CutStats:
    """What the proxy did, and its limit (a test may change it on the fly)."""

    cut_after: int
    connections: int = 0
    cuts: int = 0


@attrs.define
class _Exchange:
    sse: bool = False
    sent: int = 0


async def _serve_one(client: trio.SocketStream, upstream_port: int, stats: CutStats) -> None:
    stats.connections += 1
    state = _Exchange()
    upstream = await trio.open_tcp_stream("127.0.0.1", upstream_port)
    async with client, upstream, trio.open_nursery() as nursery:

        async def requests() -> None:
            async for chunk in client:
                if chunk.startswith(_REQUEST_STARTS):
                    state.sse, state.sent = False, 0
                await upstream.send_all(chunk)
            nursery.cancel_scope.cancel()

        async def responses() -> None:
            async for chunk in upstream:
                if not state.sse:
                    head_end = chunk.find(b"\r\n\r\n")
                    if b"text/event-stream" in chunk[: head_end if head_end >= 0 else None]:
                        state.sse = True
                        state.sent = -(head_end + 4)  # count the body only
                limit = stats.cut_after
                if state.sse and state.sent + len(chunk) > limit:
                    await client.send_all(chunk[: max(0, limit - state.sent)])
                    stats.cuts += 1
                    nursery.cancel_scope.cancel()
                    return
                state.sent += len(chunk)
                await client.send_all(chunk)
            nursery.cancel_scope.cancel()

        nursery.start_soon(requests)
        nursery.start_soon(responses)


async def _guarded(client: trio.SocketStream, upstream_port: int, stats: CutStats) -> None:
    try:
        await _serve_one(client, upstream_port, stats)
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # one side hung up: the other is closed with it


@asynccontextmanager
async def cutting_proxy(
    upstream: str, *, cut_after: int = 4096
) -> AsyncIterator[tuple[str, CutStats]]:
    """Proxy to ``upstream`` (``http://127.0.0.1:PORT``); yield its own base URL and its stats."""
    port = int(upstream.rsplit(":", 1)[1])
    stats = CutStats(cut_after)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(
                trio.serve_tcp,
                lambda stream: _guarded(stream, port, stats),
                0,
                host="127.0.0.1",
            )
        )
        own = listeners[0].socket.getsockname()[1]
        try:
            yield f"http://127.0.0.1:{own}", stats
        finally:
            nursery.cancel_scope.cancel()
