"""The request gate: what an HTTP request must satisfy before the app reads it.

:class:`RequestGate` is ASGI middleware that ``flowkit serve`` puts in front
of the app it serves (``flowkit_http._serve``). It holds four rules that are
HTTP's, not MCP's, so they live in the adapter and not in the core:

* **framing** — a request with both ``Content-Length`` and
  ``Transfer-Encoding`` is refused with 400 and its connection closed
  (RFC 9112 §6.1: the two disagree about where the body ends, which is how
  requests are smuggled past a proxy);
* **absolute-form targets** (``POST http://host:port/mcp``, RFC 9112 §3.2.2)
  are served as the origin-form path, with the target's authority as the
  ``Host`` (the RFC says to ignore the received one), so the core's ``Host``
  allow-list decides whether the target names this server;
* **body timeout** — a body must arrive completely within ``body_timeout``
  seconds of the request head, else 408 and the connection closes;
* **body budget** — the bytes of all unfinished bodies together stay under
  ``body_budget``. A body reserves its ``Content-Length`` when the app first
  asks for it (so requests the app refuses from the head alone reserve
  nothing), a chunked one reserves as its chunks arrive; beyond the budget
  the request gets 503 with ``Retry-After`` (when the oldest held body times
  out at the latest) and the connection closes, before the body is read;
  a body that would not fit even an empty budget gets 413 instead.
  Bodies over ``small_body`` may take only three quarters of the budget, so
  slow large uploads can not lock out small requests (a ``tools/call``).

A refused request looks to the app like a client that went away
(``http.disconnect``), and anything the app sends afterwards is dropped.
The budget is released when the body is complete (the app holds it then)
or the request ends.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ._asgi import ASGIApp, Message, Receive, Scope, Send

__all__ = ["GateStatistics", "RequestGate"]

_DISCONNECT: Message = {"type": "http.disconnect"}
_DISCARD_GRACE = 1.0  # seconds a drain may outlive the answer that started it


@attrs.frozen
class GateStatistics:
    """What the gate holds and what it refused, since it was made."""

    held_bytes: int
    held_bodies: int
    timed_out: int
    over_budget: int
    bad_framing: int


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class RequestGate:
    """ASGI middleware enforcing HTTP framing, a body timeout and a body budget.

    Args:
        app: the app behind the gate.
        body_timeout: seconds from the request head to the end of its body.
        body_budget: bytes all unfinished bodies may hold together.
        small_body: bodies up to this size may use the whole budget; larger
            ones three quarters of it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_timeout: float = 20.0,
        body_budget: int = 64 * 1024 * 1024,
        small_body: int = 64 * 1024,
    ) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.body_budget = body_budget
        self.small_body = small_body
        self.held = 0
        self._bodies: set[_Body] = set()
        self._timed_out = self._over_budget = self._bad_framing = 0

    def statistics(self) -> GateStatistics:
        return GateStatistics(
            self.held, len(self._bodies), self._timed_out, self._over_budget, self._bad_framing
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, run = self._admit(scope, receive, send)
        try:
            await run
        finally:
            if body is not None:
                body.release()  # whatever ended the request

    def dispatch(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """:meth:`__call__` without a coroutine frame of its own, for ``flowkit serve``.

        The frame's only task is to release an unfinished body's budget when
        the request ends, and an open stream would hold it for its whole
        life (~0.3 KiB). Here a body's share is released by everything that
        ends it short of that: its last chunk, a refusal, the client's
        disconnect, the response's last message, and (a request the app
        dropped without any of those: a crash) the budget itself, which
        takes back a share past its body deadline before it refuses anyone.
        """
        return self._admit(scope, receive, send)[1]

    def _admit(
        self, scope: Scope, receive: Receive, send: Send
    ) -> tuple[_Body | None, Awaitable[None]]:
        """The request's body (``None``: none to guard) and what to await to serve it."""
        if scope["type"] != "http":
            return None, self.app(scope, receive, send)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        length = _header(headers, b"content-length")
        chunked = _header(headers, b"transfer-encoding") is not None
        if length is not None and chunked:
            self._bad_framing += 1
            return None, _answer_unread(scope, receive, send, 400, b"")
        path: str = scope["path"]
        if not path.startswith("/") and "://" in path:
            origin_form = _origin_form(scope)
            if origin_form is None:
                self._bad_framing += 1
                return None, _answer_unread(scope, receive, send, 400, b"")
            scope = origin_form
        if not chunked and (length is None or length.strip() == b"0"):
            return None, self.app(scope, receive, send)  # no body to wait for
        declared = int(length) if length is not None and length.strip().isdigit() else None
        body = _Body(self, scope, receive, send, declared)
        return body, self.app(scope, body.receive, body.send)

    def _limit(self, total: int) -> int:
        return self.body_budget if total <= self.small_body else self.body_budget * 3 // 4

    def reserve(self, body: _Body, size: int) -> bool:
        """Take ``size`` more bytes of the budget for ``body``, if they fit."""
        if self.held + size > self._limit(body.reserved + size):
            self._reclaim()  # (it may release this body's own share: read it after)
            if self.held + size > self._limit(body.reserved + size):
                return False
        total = body.reserved + size
        self.held += size
        body.reserved = total
        self._bodies.add(body)
        return True

    def _reclaim(self) -> None:
        """Release the shares held past their body deadline.

        A body past its deadline is refused (408) by its next read, so a
        share held that long belongs to a request that ended without a
        release (under :meth:`dispatch`: an app that crashed mid-body).
        """
        now = trio.current_time()
        expired = [body for body in self._bodies if body.deadline <= now]
        for body in expired:
            body.release()

    def retry_after(self) -> int:
        """Seconds until the oldest held body frees its share (it times out by then)."""
        if not self._bodies:
            return 1
        soonest = min(body.deadline for body in self._bodies)
        return max(1, math.ceil(soonest - trio.current_time()))


class _Body:
    """One request's body as the app reads it through the gate."""

    __slots__ = (
        "_receive",
        "_send",
        "deadline",
        "declared",
        "done",
        "gate",
        "refused",
        "reserved",
        "scope",
        "started",
    )

    def __init__(
        self, gate: RequestGate, scope: Scope, receive: Receive, send: Send, declared: int | None
    ) -> None:
        self.gate = gate
        self.scope = scope
        self._receive = receive
        self._send = send
        self.declared = declared
        self.deadline = trio.current_time() + gate.body_timeout
        self.reserved = 0
        self.done = self.refused = self.started = False

    async def receive(self) -> Message:
        if self.done:
            return await self._receive()
        if self.refused:
            return _DISCONNECT
        gate = self.gate
        if self.declared and not self.reserved and not gate.reserve(self, self.declared):
            return await self._refuse_over_budget(self.declared)
        message: Message | None = None
        with trio.move_on_at(self.deadline):
            message = await self._receive()
        if message is None:
            gate._timed_out += 1
            await self._refuse(408, b"Request body not received in time")
            return _DISCONNECT
        if message["type"] != "http.request":
            self.done = True  # a disconnect: nothing more to wait for
            self.release()
            return message
        size = len(message.get("body", b""))
        if self.declared is None and size and not gate.reserve(self, size):
            return await self._refuse_over_budget(size)
        if not message.get("more_body", False):
            self.done = True
            self.release()
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        self.started = True
        if (
            not self.done
            and message["type"] == "http.response.body"
            and not message.get("more_body", False)
        ):
            # The app answered without reading the whole body (413 from the
            # head, say): hypercorn closes the connection next, see
            # _answer_unread for why its queue must keep moving meanwhile.
            async with _discarding(self._receive):
                await self._send(message)
            self.release()
            return
        await self._send(message)

    async def _refuse_over_budget(self, size: int) -> Message:
        gate = self.gate
        gate._over_budget += 1
        if self.reserved + size > gate._limit(self.reserved + size):
            # It would not fit an empty budget either: retrying can not help.
            await self._refuse(413, b"Request body larger than the server's body budget")
            return _DISCONNECT
        retry = str(gate.retry_after()).encode("ascii")
        await self._refuse(503, b"Too many request bodies in progress", retry)
        return _DISCONNECT

    async def _refuse(self, status: int, text: bytes, retry_after: bytes | None = None) -> None:
        self.release()
        if self.started:  # the app already answered: closing is all we can do
            self.refused = True
            return
        self.refused = True
        await _answer_unread(self.scope, self._receive, self._send, status, text, retry_after)

    def release(self) -> None:
        gate = self.gate
        gate.held -= self.reserved
        self.reserved = 0
        gate._bodies.discard(self)


def _origin_form(scope: Scope) -> Scope | None:
    """The scope of an absolute-form target as origin-form, its authority as ``Host``."""
    scheme, _, rest = scope["path"].partition("://")
    if scheme.lower() not in ("http", "https"):
        return None
    authority, slash, path = rest.partition("/")
    if not authority or "@" in authority:
        return None
    _, _, raw_rest = bytes(scope.get("raw_path", b"")).partition(b"://")
    _, _, raw_path = raw_rest.partition(b"/")
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"]
    headers.append((b"host", authority.encode("latin-1")))
    new: MutableMapping[str, Any] = dict(scope)
    new.update(path="/" + path if slash else "/", raw_path=b"/" + raw_path, headers=headers)
    return new


@asynccontextmanager
async def _discarding(receive: Receive) -> AsyncIterator[None]:
    """Receive and drop the request's messages until ``http.disconnect``, around the block.

    hypercorn hands body chunks to the app through a bounded queue
    (``max_app_queue_size``) and, when the response ends, puts
    ``http.disconnect`` on it too, in the task sending the response. An app
    that answered without reading the body reads nothing more, so with the
    queue full that put would wait for ever, the connection never closes
    and its slot, descriptor and buffers are lost. Draining while the
    answer goes out lets the put through; once the disconnect is seen (the
    response ended), the drain stops; it is bounded by ``_DISCARD_GRACE``
    after the block regardless.
    """

    async def discard() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(discard)
        yield
        nursery.cancel_scope.deadline = trio.current_time() + _DISCARD_GRACE


async def _answer_unread(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    text: bytes,
    retry_after: bytes | None = None,
) -> None:
    """Refuse a request whose body is unread (see :func:`_discarding`)."""
    async with _discarding(receive):
        await _refuse(scope, send, status, text, retry_after)


async def _refuse(
    scope: Scope, send: Send, status: int, text: bytes, retry_after: bytes | None = None
) -> None:
    """Answer ``status`` with ``Connection: close``.

    Framing refusals (400) carry no body: once h11 has seen ``close`` from
    us, more bytes from the client (the smuggled request) make hypercorn
    drop the connection at once, between our head and a body; a head alone
    always arrives whole.
    """
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after))
    if scope.get("http_version", "1.1") in ("1.0", "1.1"):
        headers.append((b"connection", b"close"))  # HTTP/2 has no such header
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text, "more_body": False})
