"""``flowkit serve``'s write path: straight to the socket when it can, hypercorn's when it must.

``_TCPServer.protocol_send`` sends a chunk with a plain non-blocking
``send`` when no other write holds the lock, and only the part the socket
did not take goes through ``SocketStream.send_all`` (still under the lock).
Checked on a real socket pair with a small buffer and a reader that lags:
concurrent writers never interleave their bytes, a full socket waits rather
than dropping, and a peer that went away is hypercorn's ``Closed``.
"""

from __future__ import annotations

import socket
from typing import Any

import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.events import Closed, RawData
from hypercorn.trio.worker_context import WorkerContext

from flowkit_http._serve import _Stream, _TCPServer


class _Protocol:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def handle(self, event: Any) -> None:
        self.events.append(event)


def _server(raw: socket.socket) -> tuple[_TCPServer, _Protocol]:
    raw.setblocking(False)
    server = _TCPServer(None, Config(), WorkerContext(None), {}, _Stream(raw))  # type: ignore[arg-type]
    protocol = _Protocol()
    server.protocol = protocol  # type: ignore[assignment]
    return server, protocol


async def _read_all(peer: trio.SocketStream, size: int, every: float) -> bytes:
    got = bytearray()
    while len(got) < size:
        got += await peer.receive_some(4096)
        await trio.sleep(every)  # a lagging reader: the sender's buffer fills
    return bytes(got)


async def test_concurrent_writes_fill_the_socket_and_never_interleave() -> None:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server, protocol = _server(ours)
    chunks = [bytes([65 + i]) * 50_000 for i in range(6)]
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(theirs))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for chunk in chunks:
                nursery.start_soon(server.protocol_send, RawData(chunk))
            received = await _read_all(peer, sum(map(len, chunks)), 0.0005)
    # Each chunk arrives whole: runs of one letter, 50,000 long each.
    runs = [received[i : i + 50_000] for i in range(0, len(received), 50_000)]
    assert sorted(runs) == sorted(chunks)
    assert protocol.events == []
    ours.close()
    theirs.close()


async def test_small_writes_arrive_in_order() -> None:
    ours, theirs = socket.socketpair()
    server, _ = _server(ours)
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(theirs))
    for i in range(200):
        await server.protocol_send(RawData(b"%04d" % i))
    received = await _read_all(peer, 800, 0)
    assert received == b"".join(b"%04d" % i for i in range(200))
    ours.close()
    theirs.close()


async def test_a_write_to_a_peer_that_left_is_hypercorns_closed() -> None:
    ours, theirs = socket.socketpair()
    server, protocol = _server(ours)
    theirs.close()
    await server.protocol_send(RawData(b"x" * 10))
    assert [type(e) for e in protocol.events] == [Closed]
    ours.close()


async def test_a_write_is_a_checkpoint() -> None:
    """Even when the socket takes it at once: it yields, and a cancelled writer sends nothing."""
    ours, theirs = socket.socketpair()
    server, _ = _server(ours)
    with trio.testing.assert_checkpoints():
        await server.protocol_send(RawData(b"y"))
    with trio.CancelScope() as scope:
        scope.cancel()
        await server.protocol_send(RawData(b"z"))
    assert scope.cancelled_caught
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(theirs))
    assert await peer.receive_some(10) == b"y"
    ours.close()
    theirs.close()
