"""Issue 20: why 5 of 3,000 idle tool-call streams closed during a 20 s hold, made impossible.

hypercorn's keep-alive timer (``keep_alive_timeout``, 5 s) runs from the
accept until a request's head is parsed, then is cancelled. Once its
deadline has passed, though, its task closes the connection in a shielded
scope when it next runs, cancelled or not (under ``flowkit serve`` the timer
is an entry on one shared task, ``flowkit_http._idle``, and a fired timer's
close is a task started in the connection's group: the same race). With thousands of streams
opening at once the loop is busy for seconds, so a head parsed between the
deadline and the timer task's turn starts a response that the timer then
cuts: an open stream closes for no reason the client can see.

The test makes that moment exact on trio's mock clock: the connection's
stream jumps the clock past the timer's deadline just as the request's
bytes are read (the loop "stalled" right then), and the response must live
on. On hypercorn's own ``TCPServer`` the connection closed every time.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.utils import wrap_app

from flowkit_http import ServeLimits
from flowkit_http._serve import _Server, _Stream, _TCPServer

_REQUEST = b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"


class _StallAsTheHeadArrives(_Stream):
    """The event loop stalls past the keep-alive deadline right as the request is read."""

    def __init__(self, raw: socket.socket, clock: trio.testing.MockClock, stall: float) -> None:
        super().__init__(raw)
        self.clock = clock
        self.stall = stall

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await super().receive_some(max_bytes)
        if data and self.stall:
            self.clock.jump(self.stall)
            self.stall = 0.0
        return data


async def _streaming_app(scope: Any, receive: Any, send: Any) -> None:
    """An idle stream: a head and one event, then one event per 10 s (a keepalive)."""
    if scope["type"] != "http":
        return
    start = {"type": "http.response.start", "status": 200}
    await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
    while True:
        await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
        await trio.sleep(10)


async def test_a_request_parsed_as_the_keep_alive_timer_fires_is_not_cut(
    mock_clock: trio.testing.MockClock,  # time moves only when the test moves it
) -> None:
    clock = mock_clock
    config = Config()
    assert config.keep_alive_timeout == 5
    server = _Server(wrap_app(_streaming_app, 2**20, "asgi"), config, {}, ServeLimits())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        raw, _ = listener.accept()
    async with trio.open_nursery() as nursery:
        stream = _StallAsTheHeadArrives(raw, clock, stall=config.keep_alive_timeout + 0.1)
        server.live.add(stream)  # as the accept loop does
        nursery.start_soon(server.idle.serve)  # as serve() does: the timers' task
        nursery.start_soon(server._connection, stream)
        await trio.testing.wait_all_tasks_blocked()  # the timer runs, from the accept
        peer = trio.SocketStream(trio.socket.from_stdlib_socket(client))
        await peer.send_all(_REQUEST)
        received = b""
        while received.count(b": ping") < 1:
            chunk = await peer.receive_some()
            assert chunk, "closed before the response started"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        # Long past the timer's deadline, the stream still delivers (time runs
        # on its own from here: the mock clock jumps whenever all wait).
        clock.autojump_threshold = 0
        with trio.fail_after(60):
            while received.count(b": ping") < 4:
                chunk = await peer.receive_some()
                assert chunk, "the keep-alive timer cut a busy connection"
                received += chunk
        assert trio.current_time() > 30
        assert stream in server.live
        nursery.cancel_scope.cancel()
    await peer.aclose()
    raw.close()  # cancelled mid-response: its close was cut short


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    """A small JSON answer to every request."""
    if scope["type"] != "http":
        return
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})


async def test_a_client_that_leaves_a_kept_alive_connection_frees_it_at_once(
    mock_clock: trio.testing.MockClock,  # time stands still: no timer may fire
) -> None:
    """The keep-alive timer restarted by the last response must not hold a closed connection.

    A response that ends just before the client's close recycles the
    connection (its keep-alive timer starts again) before the end of file is
    read; hypercorn then kept the connection, and its ``--max-connections``
    slot, in CLOSE-WAIT until the timer fired (5 s): a burst of 500 short
    sessions, three times over, ran into the connection cap.
    """
    server = _Server(wrap_app(_answer, 2**20, "asgi"), Config(), {}, ServeLimits())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        raw, _ = listener.accept()
    async with trio.open_nursery() as nursery:
        stream = _Stream(raw)
        server.live.add(stream)  # as the accept loop does
        nursery.start_soon(server.idle.serve)  # as serve() does: the timers' task
        nursery.start_soon(server._connection, stream)
        peer = trio.SocketStream(trio.socket.from_stdlib_socket(client))
        await peer.send_all(_REQUEST)
        received = b""
        while not received.endswith(b"{}"):
            received += await peer.receive_some()
        await trio.testing.wait_all_tasks_blocked()  # recycled: the timer runs again
        assert stream in server.live
        await peer.send_eof()  # the client leaves
        await trio.testing.wait_all_tasks_blocked()
        assert stream not in server.live  # with the clock not moved at all
        assert trio.current_time() == 0
        assert await peer.receive_some() == b""  # and the server closed its side
        nursery.cancel_scope.cancel()  # the timers' task
    await peer.aclose()


async def test_a_served_connection_idle_for_the_timeout_is_closed_and_a_busy_one_is_not(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Through hypercorn's protocol: requests restart the timer, the timeout closes."""
    config = Config()
    server = _Server(wrap_app(_answer, 2**20, "asgi"), config, {}, ServeLimits())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        raw, _ = listener.accept()
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(client))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.idle.serve)
        stream = _Stream(raw)
        server.live.add(stream)
        nursery.start_soon(server._connection, stream)
        for _ in range(3):  # each request within the timeout of the last response
            await trio.sleep(config.keep_alive_timeout - 1)
            await peer.send_all(_REQUEST)
            received = b""
            while not received.endswith(b"{}"):
                chunk = await peer.receive_some()
                assert chunk, "closed while in use"
                received += chunk
        last = trio.current_time()
        assert await peer.receive_some() == b""  # then idle: closed by the timer
        assert trio.current_time() == pytest.approx(last + config.keep_alive_timeout)
        await trio.testing.wait_all_tasks_blocked()
        assert stream not in server.live
        nursery.cancel_scope.cancel()
    await peer.aclose()


async def test_the_close_leaves_a_connection_whose_request_arrived_as_it_fired() -> None:
    server = _Server(wrap_app(_answer, 2**20, "asgi"), Config(), {}, ServeLimits())
    ours, theirs = socket.socketpair()
    stream = _Stream(ours)
    driver = _TCPServer(server.app, Config(), server.context, {}, stream, timers=server.idle)  # type: ignore[arg-type]
    driver._busy = True  # hypercorn said "not idle" before the fired close ran
    await driver._idle_timeout()
    assert not stream.ending
    assert not stream.closed
    ours.close()
    theirs.close()
