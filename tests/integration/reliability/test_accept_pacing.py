"""Accept pacing under ``flowkit serve``'s accept loop, on trio's mock clock.

Requests being worked on hold new connections back, but never for longer
than the pacer's age: eight calls that never answer (a slow tool, a dead
Redis) delay the next connection by 20 ms once, not for as long as they run.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.utils import wrap_app

from flowkit_http import ServeLimits
from flowkit_http._serve import _PACING_AGE, _Server

_REQUEST = b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"


async def _requests(listener: socket.socket, n: int, clients: list[socket.socket]) -> None:
    """``n`` clients, one after the other, each sending a request once connected."""
    for _ in range(n):
        client = socket.create_connection(listener.getsockname())
        client.sendall(_REQUEST)
        clients.append(client)
        await trio.testing.wait_all_tasks_blocked()


async def _never_answers(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await trio.sleep_forever()


@asynccontextmanager
async def _serving(app: Any) -> AsyncIterator[tuple[_Server, socket.socket, list[socket.socket]]]:
    """``app`` behind flowkit serve's accept loop; its connections and clients closed after."""
    server = _Server(wrap_app(app, 2**20, "asgi"), Config(), {}, ServeLimits())
    clients: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.accept, listener, nursery)
            yield server, listener, clients
            opened = list(server.live)
            nursery.cancel_scope.cancel()
    for stream in opened:
        stream._raw.close()  # cancelled mid-request: their closes were cut short
    for client in clients:
        client.close()


async def test_working_requests_delay_an_accept_by_the_age_at_most(
    mock_clock: trio.testing.MockClock,  # time moves only when the test moves it
) -> None:
    async with _serving(_never_answers) as (server, listener, clients):
        assert server.pacer.limit == 8
        await _requests(listener, 8, clients)
        assert len(server.live) == 8
        assert len(server.pacer) == 8  # eight requests at work, none answered
        clients.append(socket.create_connection(listener.getsockname()))
        await trio.testing.wait_all_tasks_blocked()
        assert len(server.live) == 8  # the ninth waits for room
        mock_clock.jump(_PACING_AGE)
        await trio.testing.wait_all_tasks_blocked()
        assert len(server.live) == 9  # the eight aged out: accepted, 20 ms late
        assert len(server.pacer) == 0
        assert server.pacer.waited == 1
        clients.append(socket.create_connection(listener.getsockname()))
        await trio.testing.wait_all_tasks_blocked()
        assert len(server.live) == 10  # at once: the long calls count no more


async def _answers(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_answered_requests_leave_room_at_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    async with _serving(_answers) as (server, listener, clients):
        await _requests(listener, 20, clients)
        assert len(server.live) == 20
        assert server.pacer.waited == 0
        assert trio.current_time() == 0


def _slow_handshakes(reached: list[bytes]) -> Any:
    """An app that records each request's path; ``/slow`` never answers (a
    handshake still at work), any other path is answered at once."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        reached.append(scope["path"].encode())
        if scope["path"] == "/slow":
            await trio.sleep_forever()
        await _answers(scope, receive, send)

    return app


async def test_first_requests_wait_their_turn_and_a_served_connection_never_does(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Eight handshakes at work hold the ninth back; a session's next request goes at once."""
    reached: list[bytes] = []
    app = _slow_handshakes(reached)
    async with _serving(app) as (server, listener, clients):
        served = socket.create_connection(listener.getsockname())
        served.setblocking(False)  # an answer not written yet fails the test, no hang
        clients.append(served)
        for _ in range(10):
            clients.append(socket.create_connection(listener.getsockname()))
        await trio.testing.wait_all_tasks_blocked()
        assert len(server.live) == 11  # all accepted while nothing was at work
        served.sendall(_REQUEST.replace(b"/mcp", b"/fast"))
        await trio.testing.wait_all_tasks_blocked()
        assert served.recv(4096).startswith(b"HTTP/1.1 204")
        for client in clients[1:]:
            client.sendall(_REQUEST.replace(b"/mcp", b"/slow"))
        await trio.testing.wait_all_tasks_blocked()
        assert reached.count(b"/slow") == 8  # two first requests wait their turn
        served.sendall(_REQUEST.replace(b"/mcp", b"/fast"))
        await trio.testing.wait_all_tasks_blocked()
        assert served.recv(4096).startswith(b"HTTP/1.1 204")  # at once, nine at work
        assert reached.count(b"/fast") == 2
        mock_clock.jump(_PACING_AGE)  # the eight age out: the two go
        await trio.testing.wait_all_tasks_blocked()
        assert reached.count(b"/slow") == 10
        assert trio.current_time() == _PACING_AGE


@pytest.mark.parametrize(
    "header",
    [b"Mcp-Session-Id: s1", b"MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call"],
)
async def test_a_first_request_that_is_a_call_never_waits_its_turn(
    mock_clock: trio.testing.MockClock, header: bytes
) -> None:
    """Eight handshakes at work: a session's call on a new connection, or a stateless
    call (every one of which is a first request), goes at once; a ninth handshake waits."""
    reached: list[bytes] = []
    app = _slow_handshakes(reached)
    async with _serving(app) as (server, listener, clients):
        for _ in range(10):
            clients.append(socket.create_connection(listener.getsockname()))
        await trio.testing.wait_all_tasks_blocked()
        assert len(server.live) == 10  # all accepted while nothing was at work
        call, handshake = clients[-2:]
        call.setblocking(False)  # an answer not written yet fails the test, no hang
        for client in clients[:8]:
            client.sendall(_REQUEST.replace(b"/mcp", b"/slow"))
        await trio.testing.wait_all_tasks_blocked()
        handshake.sendall(_REQUEST.replace(b"/mcp", b"/slow"))
        call.sendall(
            _REQUEST.replace(b"/mcp", b"/fast").replace(b"\r\n\r\n", b"\r\n" + header + b"\r\n\r\n")
        )
        await trio.testing.wait_all_tasks_blocked()
        assert call.recv(4096).startswith(b"HTTP/1.1 204")  # at once, eight at work
        assert reached.count(b"/slow") == 8  # the ninth handshake waits its turn
        assert trio.current_time() == 0


async def _refuses_websockets(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})


async def test_a_websocket_upgrade_as_a_first_request_is_answered() -> None:
    """Its scope has no method: the line takes it as a GET (it may be a handshake)."""
    async with _serving(_refuses_websockets) as (server, listener, clients):
        client = socket.create_connection(listener.getsockname())
        clients.append(client)
        client.sendall(
            b"GET /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\n"
            b"connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"sec-websocket-version: 13\r\n\r\n"
        )
        client.setblocking(False)
        answer = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in answer:
                await trio.lowlevel.wait_readable(client)
                chunk = client.recv(4096)
                assert chunk, "the connection closed unanswered"
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 403")  # hypercorn's answer to a close before accept
        assert server.pacer.waited == 0
