"""``flowkit serve`` hands each request's events to the app through a flowkit channel.

``_TCPServer.run`` is hypercorn's connection driver with
:class:`~flowkit_http._appqueue.AppTaskGroup`: the per-request ASGI queue is
a flowkit channel instead of trio's memory channel (~1 KiB less per open
stream). Checked on a real socket pair with hypercorn's protocol: body
chunks and the disconnect reach the app in order, and an app that fails
still gets hypercorn's 500.
"""

from __future__ import annotations

import socket
from typing import Any

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.worker_context import WorkerContext

from flowkit import FlowReceiveChannel
from flowkit_http._serve import _Stream, _TCPServer

_CHUNKED = b"POST /x HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"


def _driver(app: Any) -> tuple[_TCPServer, trio.SocketStream]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    server = _TCPServer(ASGIWrapper(app), Config(), WorkerContext(None), {}, _Stream(ours))
    return server, trio.SocketStream(trio.socket.from_stdlib_socket(theirs))


async def test_body_chunks_then_the_disconnect_reach_the_app_through_a_flowkit_channel() -> None:
    seen: list[dict[str, Any]] = []
    queues: list[object] = []
    answered = trio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        queues.append(getattr(receive, "__self__", None))
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.request" and not message.get("more_body"):
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"ok", "more_body": True})
                answered.set()
            if message["type"] == "http.disconnect":
                return

    server, peer = _driver(app)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.run)
            await peer.send_all(_CHUNKED)
            await peer.send_all(b"2\r\nde\r\n")
            await peer.send_all(b"0\r\n\r\n")
            await answered.wait()
            head = await peer.receive_some(4096)
            await peer.aclose()  # the client leaves mid-response
    assert head.startswith(b"HTTP/1.1 200")
    assert isinstance(queues[0], FlowReceiveChannel)
    body = b"".join(m.get("body", b"") for m in seen if m["type"] == "http.request")
    assert body == b"abcde"
    assert [m["type"] for m in seen][-1] == "http.disconnect"


async def test_an_app_that_fails_still_gets_hypercorns_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    server, peer = _driver(app)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.run)
            await peer.send_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += await peer.receive_some(4096)
            await peer.aclose()
    assert answer.startswith(b"HTTP/1.1 500")
