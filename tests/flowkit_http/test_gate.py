"""The request gate's frameless path (``RequestGate.dispatch``, as ``flowkit serve`` calls it).

Without a frame around the app there is no ``finally`` to release a body's
budget share: everything that ends a body releases it instead, and a share
left by an app that crashed mid-body is taken back once past its deadline.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from flowkit_http import RequestGate

Message = dict[str, Any]


def _scope(length: int) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "headers": [(b"content-length", str(length).encode())],
    }


class _Client:
    """The server side of one request: what it receives and what was sent to it."""

    def __init__(self, *messages: Message) -> None:
        self.messages = list(messages)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.messages:
            return self.messages.pop(0)
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def _reads_then(app_end: str, receive: Any, send: Any) -> None:
    message = await receive()
    assert message["type"] == "http.request"
    if app_end == "crash":
        raise RuntimeError("the app crashed mid-body")
    await receive()  # the disconnect


async def test_a_disconnect_releases_the_share_without_the_frame() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _reads_then("disconnect", receive, send)

    gate = RequestGate(app, body_budget=1000)
    client = _Client(
        {"type": "http.request", "body": b"x" * 10, "more_body": True},
        {"type": "http.disconnect"},
    )
    await gate.dispatch(_scope(400), client.receive, client.send)
    assert gate.statistics().held_bytes == 0
    assert gate.statistics().held_bodies == 0


async def test_a_share_left_by_a_crashed_app_is_taken_back_past_its_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _reads_then("crash", receive, send)

    gate = RequestGate(app, body_budget=1000, body_timeout=5.0, small_body=1000)
    client = _Client({"type": "http.request", "body": b"x" * 10, "more_body": True})
    with pytest.raises(RuntimeError, match="crashed"):
        await gate.dispatch(_scope(900), client.receive, client.send)
    assert gate.statistics().held_bytes == 900  # nobody released it yet

    async def reader(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate.app = reader
    second = _Client({"type": "http.request", "body": b"y" * 500})
    await gate.dispatch(_scope(500), second.receive, second.send)
    assert second.sent[0]["status"] == 503  # within the deadline: the share still counts
    await trio.sleep(5.0)
    third = _Client({"type": "http.request", "body": b"z" * 500})
    await gate.dispatch(_scope(500), third.receive, third.send)
    assert third.sent[0]["status"] == 200  # past it: taken back, the body fits
    assert gate.statistics().held_bytes == 0


async def test_call_keeps_its_frame_and_releases_at_the_end() -> None:
    """``__call__`` (any ASGI server) still releases in its ``finally``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _reads_then("crash", receive, send)

    gate = RequestGate(app, body_budget=1000)
    client = _Client({"type": "http.request", "body": b"x" * 10, "more_body": True})
    with pytest.raises(RuntimeError):
        await gate(_scope(400), client.receive, client.send)
    assert gate.statistics().held_bytes == 0
