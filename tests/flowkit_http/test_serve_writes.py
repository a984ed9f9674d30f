"""``flowkit serve``'s write path: straight to the socket when it can, hypercorn's when it must.

``_TCPServer.protocol_send`` sends a chunk with a plain non-blocking
``send`` when no other write holds the lock, and only the part the socket
did not take goes through ``SocketStream.send_all`` (still under the lock).
Checked on a real socket pair with a small buffer and a reader that lags:
concurrent writers never interleave their bytes, a full socket waits rather
than dropping, and a peer that went away is hypercorn's ``Closed``.

``_TCPServer.send_message`` writes each ASGI message in one socket write
(hypercorn writes a head, each chunk and the terminator separately), and a
message hinted ``MORE`` together with the next one.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, cast

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.events import Closed, RawData, Updated
from hypercorn.trio.worker_context import WorkerContext

from flowkit_http._asgi import MORE
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


class _Counted:
    """A connection's ``send_now`` with a count of the socket writes."""

    def __init__(self, stream: _Stream) -> None:
        self.writes = 0
        self._send_now = stream.send_now
        stream.send_now = self  # type: ignore[method-assign]

    def __call__(self, data: bytes | memoryview) -> int:
        self.writes += 1
        return self._send_now(data)


def _hypercorn_like(server: _TCPServer, *pieces: bytes) -> Any:
    """An ASGI ``send`` that writes ``pieces`` one protocol write each, as hypercorn does."""

    async def send(message: Any) -> None:
        for piece in pieces:
            await server.protocol_send(RawData(piece))

    return send


def _pending(theirs: socket.socket) -> bytes:
    try:
        return theirs.recv(65536, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


async def test_each_message_is_one_socket_write() -> None:
    """A final body is a chunk and a terminator for hypercorn: one write here."""
    ours, theirs = socket.socketpair()
    server, _ = _server(ours)
    counted = _Counted(cast(_Stream, server.stream))
    send = _hypercorn_like(server, b"5\r\nhello\r\n", b"0\r\n\r\n")
    with trio.testing.assert_checkpoints():
        await server.send_message(send, {"type": "http.response.body", "body": b"hello"})
    assert counted.writes == 1
    assert _pending(theirs) == b"5\r\nhello\r\n0\r\n\r\n"
    ours.close()
    theirs.close()


async def test_a_message_hinted_more_goes_out_with_the_next() -> None:
    ours, theirs = socket.socketpair()
    server, _ = _server(ours)
    counted = _Counted(cast(_Stream, server.stream))
    head = {"type": "http.response.start", "status": 200, MORE: True}
    await server.send_message(_hypercorn_like(server, b"HEAD\r\n\r\n"), head)
    assert counted.writes == 0
    assert _pending(theirs) == b""  # held: the app sends the next message at once
    body = {"type": "http.response.body", "body": b"x", "more_body": True}
    await server.send_message(_hypercorn_like(server, b"1\r\nx\r\n"), body)
    assert counted.writes == 1
    assert _pending(theirs) == b"HEAD\r\n\r\n1\r\nx\r\n"
    ours.close()
    theirs.close()


async def test_held_bytes_go_before_any_other_write_and_before_a_close() -> None:
    ours, theirs = socket.socketpair()
    server, protocol = _server(ours)
    head = {"type": "http.response.start", "status": 200, MORE: True}
    await server.send_message(_hypercorn_like(server, b"A"), head)
    await server.protocol_send(RawData(b"B"))  # another writer: after what is held
    assert _pending(theirs) == b"AB"
    await server.send_message(_hypercorn_like(server, b"C"), head)
    await server.protocol_send(Closed())  # hypercorn closes: what is held goes first
    assert _pending(theirs) == b"C"
    assert [type(e) for e in protocol.events] == [Closed]
    theirs.close()


async def test_a_failed_message_leaves_nothing_holding() -> None:
    ours, theirs = socket.socketpair()
    server, _ = _server(ours)

    async def broken(message: Any) -> None:
        raise RuntimeError("hypercorn refused the message")

    with pytest.raises(RuntimeError):
        await server.send_message(broken, {"type": "http.response.body"})
    await server.protocol_send(RawData(b"next"))  # written at once, not held
    assert _pending(theirs) == b"next"
    ours.close()
    theirs.close()


async def test_receive_some_is_socketstreams() -> None:
    """The reader's own wait: data, then an end of file; a checkpoint each time; trio's errors."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    stream = _Stream(ours)
    theirs.send(b"ready")
    with trio.testing.assert_checkpoints():
        assert await stream.receive_some() == b"ready"  # there at once
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.testing.wait_all_tasks_blocked()
            theirs.send(b"late")

        nursery.start_soon(later)
        assert await stream.receive_some(2) == b"la"  # waited for it
    assert await stream.receive_some() == b"te"
    theirs.close()
    assert await stream.receive_some() == b""
    assert stream.closed  # the connection is over for hypercorn
    await stream.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await stream.receive_some()


async def test_receive_some_on_a_reset_connection_is_broken() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    raw, _ = listener.accept()
    raw.setblocking(False)
    stream = _Stream(raw)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset, not an end of file
    with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
        await stream.receive_some()
    assert stream.closed
    await stream.aclose()
    listener.close()


async def test_held_bytes_are_out_before_the_keep_alive_timer_restarts_or_a_server_close() -> None:
    """hypercorn restarts the timer as it recycles the connection, inside the last message.

    At a shutdown that timer closes the connection at once, without the send
    lock: a response's terminator held until the end of its message was lost
    (the SIGTERM test saw one stream in four end without it).
    """
    ours, theirs = socket.socketpair()
    server, protocol = _server(ours)
    seen: list[bytes] = []

    class _Timer:
        async def restart(self, task_group: Any, action: Any) -> None:
            seen.append(_pending(theirs))

        async def stop(self) -> None:
            seen.append(_pending(theirs))

    server.idle_task = _Timer()  # type: ignore[assignment]
    server._task_group = None  # type: ignore[assignment]  # (the fake timer needs none)

    async def last_message(message: Any) -> None:
        await server.protocol_send(RawData(b"0\r\n\r\n"))
        await server.protocol_send(Updated(idle=True))  # the connection is recycled

    await server.send_message(last_message, {"type": "http.response.body"})
    assert seen == [b"0\r\n\r\n"]
    head = {"type": "http.response.start", "status": 200, MORE: True}
    await server.send_message(_hypercorn_like(server, b"HEAD"), head)
    await server._initiate_server_close()  # the timer fired at a shutdown
    assert _pending(theirs) == b"HEAD"
    assert [type(e) for e in protocol.events] == [Closed]
    theirs.close()


class _StoppedTimer:
    def __init__(self) -> None:
        self.stopped = 0

    async def stop(self) -> None:
        self.stopped += 1


async def test_the_read_loop_hands_over_each_chunk_then_closed_at_the_end() -> None:
    """hypercorn's events, in hypercorn's order: ``RawData`` per chunk, ``b""`` at EOF, ``Closed``."""
    ours, theirs = socket.socketpair()
    server, protocol = _server(ours)
    timer = server.idle_task = _StoppedTimer()  # type: ignore[assignment]
    theirs.sendall(b"GET / HTTP/1.1\r\n\r\n")
    theirs.shutdown(socket.SHUT_WR)
    await server._read_data()
    data = [e.data for e in protocol.events if isinstance(e, RawData)]
    assert b"".join(data) == b"GET / HTTP/1.1\r\n\r\n"
    assert data[-1] == b""
    assert isinstance(protocol.events[-1], Closed)
    assert timer.stopped == 1  # the keep-alive timer does not outlive the connection
    ours.close()
    theirs.close()


async def test_the_read_loop_keeps_hypercorns_read_timeout(autojump_clock: trio.abc.Clock) -> None:
    """No deadline per read by default; with ``read_timeout`` set, a silent peer ends the loop."""
    ours, theirs = socket.socketpair()
    server, protocol = _server(ours)
    server.idle_task = _StoppedTimer()  # type: ignore[assignment]
    server.config.read_timeout = 30
    start = trio.current_time()
    await server._read_data()
    assert trio.current_time() - start == pytest.approx(30)
    assert [type(e) for e in protocol.events] == [Closed]
    ours.close()
    theirs.close()


async def test_a_request_read_after_the_idle_close_was_decided_is_dropped_unserved() -> None:
    """The keep-alive timer's close and a request's arrival race: the request must lose.

    Once the timer has decided (its connection was not busy), a read returns
    the end, even for bytes it already took from the socket: a request served
    on a connection about to close started its call and its client never saw
    an answer (the idle benchmark's retry then found the request id in flight).
    """
    ours, theirs = socket.socketpair()
    server, _protocol = _server(ours)
    stream = cast(_Stream, server.stream)
    theirs.sendall(b"POST /mcp HTTP/1.1\r\n")
    got: list[bytes | bytearray] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _receive_into(stream, got))
        stream.ending = True  # decided before the reader ran: its bytes are dropped
    assert got == [b""]
    assert stream.closed  # the end, as an end of file is
    ours.close()
    theirs.close()


async def _receive_into(stream: _Stream, got: list[bytes | bytearray]) -> None:
    got.append(await stream.receive_some())


async def test_the_idle_timer_decides_before_it_waits_for_the_send_lock(
    autojump_clock: trio.abc.Clock,
) -> None:
    ours, theirs = socket.socketpair()
    server, protocol = _server(ours)
    server.config.keep_alive_timeout = 5
    server._busy = False
    stream = cast(_Stream, server.stream)
    server.idle_task = _StoppedTimer()  # type: ignore[assignment]
    checked: list[tuple[bool, bool]] = []
    async with trio.open_nursery() as nursery:
        await server.send_lock.acquire()  # a write under way: the close waits for the lock
        nursery.start_soon(server._idle_timeout)
        await trio.sleep(6)
        checked.append((stream.ending, stream.closed))
        server.send_lock.release()  # the close goes on
    assert checked == [(True, False)]  # decided at the deadline, before the lock was free
    assert stream.closed
    assert [type(e) for e in protocol.events] == [Closed]
    theirs.close()
