"""Issue 20, item 1: slow bodies, the body budget and the connection cap.

Each test serves an :class:`~flowkit_http.MCPApp` in-process the way
``flowkit serve`` does (``flowkit_http._serve``: its own accept loop over
hypercorn's connection code, with the request gate in front of the app) on
127.0.0.1, and attacks it with raw sockets.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import trio

from flowkit_http import GateStatistics, MCPApp, RequestGate, ServeLimits

from ..http._raw import initialize, raw_exchange, request
from ..http._serving import serving
from ._support import (
    eventually,
    flowkit_serving,
    make_reliability_server,
    open_fds,
    request_head,
    traced_memory,
    tracing_memory,
)

_TOOLS_LIST = request("tools/list", id=7)


def _post_head(base: str, length: int) -> bytes:
    host = base.removeprefix("http://")
    headers = [
        ("host", host),
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
        ("content-length", str(length)),
    ]
    return request_head("POST", "/mcp", headers)


@asynccontextmanager
async def _connected(base: str) -> AsyncIterator[trio.SocketStream]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        yield stream


async def _until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while data := await stream.receive_some(65536):
        received += data
    return received


async def _served(base: str) -> int:
    """A well-behaved client's handshake and ``tools/list``: the status of the latter."""
    async with httpx.AsyncClient() as client:
        headers = await initialize(client, base + "/mcp")
        response = await client.post(base + "/mcp", content=_TOOLS_LIST, headers=headers)
        return response.status_code


async def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes() -> None:
    server, _probe, _faults = make_reliability_server()
    limits = ServeLimits(body_timeout=0.5)
    with trio.fail_after(20):
        async with flowkit_serving(MCPApp(server), limits) as base, _connected(base) as stream:
            await stream.send_all(_post_head(base, 1000) + b"\r\n\r\n" + b'{"jsonrpc":')
            received = await _until_closed(stream)  # the server closes it, not us
            assert received.startswith(b"HTTP/1.1 408 "), received
            assert b"connection: close" in received.lower()
            assert await _served(base) == 200


_INITIALIZE = request(
    "initialize",
    protocolVersion="2025-11-25",
    capabilities={},
    clientInfo={"name": "raw", "version": "0"},
)


async def test_an_answer_to_an_unread_body_closes_the_connection_even_with_hypercorns_queue_full() -> (
    None
):
    """A 413 from the head while the client keeps sending: hypercorn queues body
    chunks for the app, and with the queue full its end-of-response
    ``http.disconnect`` waited for ever (the connection never closed). The gate
    drains the queue while such an answer goes out. A queue of one chunk makes
    the race certain."""
    server, _probe, _faults = make_reliability_server()
    with trio.fail_after(20):
        async with flowkit_serving(MCPApp(server), app_queue=1) as base, _connected(base) as stream:
            too_large = server.config.max_body_size + 1
            head = _post_head(base, too_large) + b"\r\n\r\n"

            async def blast() -> None:
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.send_all(head + b"x" * (2 * 1024 * 1024))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(blast)
                received = b""
                with contextlib.suppress(trio.BrokenResourceError):
                    while data := await stream.receive_some(65536):
                        received += data
                nursery.cancel_scope.cancel()
            assert received.startswith(b"HTTP/1.1 413 "), received[:100]


async def test_many_slow_bodies_stay_within_the_budget_and_the_rest_get_503() -> None:
    """40 connections each announce 256 KiB and send all but one byte, then stall.

    The budget (1 MiB; large bodies may take 3/4 of it) admits three; the others
    get 503 with Retry-After before their body is read and are closed. The heap
    grows by about what the three hold, not by the 10 MiB the attack sent, and
    a small request is still served meanwhile. The gate wraps the app under
    plain hypercorn here, as a user serving the adapter themselves would.
    """
    server, _probe, _faults = make_reliability_server()
    budget = 1024 * 1024
    size = 256 * 1024
    gate = RequestGate(MCPApp(server), body_timeout=30.0, body_budget=budget)
    refused: list[bytes] = []
    with tracing_memory(), trio.fail_after(60):
        async with serving(gate) as base:
            assert await _served(base) == 200  # warm-up
            before = traced_memory()
            async with AsyncExitStack() as stack:
                held: list[trio.SocketStream] = []
                for _ in range(40):
                    stream = await stack.enter_async_context(_connected(base))
                    await stream.send_all(_post_head(base, size) + b"\r\n\r\n" + b"x" * (size - 1))
                    held.append(stream)

                async def read_refusal(stream: trio.SocketStream) -> None:
                    refused.append(await _until_closed(stream))

                # The admitted three never answer (their bodies are unfinished):
                # wait for the 37 refusals only.
                async with trio.open_nursery() as nursery:
                    for stream in held:
                        nursery.start_soon(read_refusal, stream)
                    await eventually(lambda: len(refused) == 37)
                    during = traced_memory()
                    held = gate.statistics()
                    assert await _served(base) == 200  # small bodies keep their share
                    nursery.cancel_scope.cancel()
            await eventually(lambda: gate.statistics().held_bytes == 0)  # released on close
    assert held == GateStatistics(
        held_bytes=3 * size, held_bodies=3, timed_out=0, over_budget=37, bad_framing=0
    )
    assert len(refused) == 37
    for answer in refused:
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        retry_after = int(head.split(b"retry-after: ", 1)[1].split(b"\r\n", 1)[0])
        assert 1 <= retry_after <= 31
    growth = during - before
    print(f"\nbody budget: 40 x {size} B sent, 37 refused; heap +{growth:,} B")
    assert growth < 3 * size + 2 * 1024 * 1024, growth


async def test_connections_beyond_the_cap_get_503_and_fds_come_back() -> None:
    server, _probe, _faults = make_reliability_server()
    limits = ServeLimits(max_connections=5)
    with trio.fail_after(30):
        async with flowkit_serving(MCPApp(server), limits) as base:
            idle_fds = open_fds()
            async with AsyncExitStack() as stack:
                holders = []
                for _ in range(5):  # unfinished bodies keep their connections open
                    stream = await stack.enter_async_context(_connected(base))
                    await stream.send_all(_post_head(base, 100) + b"\r\n\r\n" + b"{")
                    holders.append(stream)
                extra = b""
                for _ in range(3):
                    async with _connected(base) as stream:
                        await stream.send_all(_post_head(base, 2) + b"\r\n\r\n{}")
                        extra = await _until_closed(stream)
                        assert extra.startswith(b"HTTP/1.1 503 "), extra
                        assert b"retry-after: 1" in extra.lower()
                await holders[0].aclose()
                # One slot is free again once the server has seen that close.
                status = 0
                while status != 200:
                    async with raw_exchange(base, _initialize_head(base), _INITIALIZE) as r:
                        status = r.status
            # Every connection closed: the server's descriptors come back.
            await eventually(lambda: open_fds() <= idle_fds)


def _initialize_head(base: str) -> bytes:
    return _post_head(base, len(_INITIALIZE))


async def test_a_body_larger_than_the_whole_budget_gets_413_not_a_retry() -> None:
    """503 + Retry-After would send the client back for ever: it can never fit."""
    server, _probe, _faults = make_reliability_server()
    gate = RequestGate(MCPApp(server), body_budget=64 * 1024)
    with trio.fail_after(20):
        async with serving(gate) as base, _connected(base) as stream:
            await stream.send_all(_post_head(base, 100 * 1024) + b"\r\n\r\n")
            received = await _until_closed(stream)
    assert received.startswith(b"HTTP/1.1 413 "), received
    assert b"retry-after" not in received.lower()
