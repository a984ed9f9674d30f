"""HTTP for the client: httpx on trio, its errors translated in one place.

The client speaks to one endpoint URL with POST (every request, notification
and answer) and, in the 2025-11-25 era, GET (resuming a stream) and DELETE
(ending the session). :class:`Transport` opens those as streamed responses
and reads their bodies as JSON-RPC messages, whether the server answered
with one ``application/json`` object or a ``text/event-stream``; the bytes
of a stream go through the core's :class:`~flowkit.mcp.SSEDecoder`, so a
chunk boundary anywhere changes nothing and an event cut off by a dropped
connection is never delivered half.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager, contextmanager
from typing import Any

import httpx
import orjson
import trio

from flowkit.mcp import (
    Message,
    RemoteProtocolError,
    ServerSentEvent,
    SSEDecoder,
    parse_message,
)

from ._exceptions import (
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    ProtocolError,
    ReadTimeout,
    RPCError,
    SessionExpired,
    TimeoutError,
    TransportError,
)
from ._policy import Timeouts

__all__ = ["Body", "HTTPTransport", "translated"]

ACCEPT = "application/json, text/event-stream"
# Seconds a stream may take to end after the response we waited for.
_DRAIN_GRACE = 1.0


@contextmanager
def translated() -> Iterator[None]:
    """Turn httpx's exceptions into the client's (the original is ``__cause__``)."""
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise ConnectTimeout(f"connecting timed out: {exc}") from exc
    except httpx.ReadTimeout as exc:
        raise ReadTimeout(f"nothing received within the read timeout: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise TimeoutError(f"HTTP timeout: {exc}") from exc
    except httpx.ConnectError as exc:
        raise ConnectError(f"cannot connect: {exc}") from exc
    except httpx.TransportError as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc


def _message(data: bytes | str) -> Message:
    try:
        return parse_message(data.encode() if isinstance(data, str) else data)
    except RemoteProtocolError as exc:
        raise ProtocolError(f"unreadable JSON-RPC message from the server: {exc}") from None


def _error(body: bytes, status: int, session: bool) -> RPCError | None:
    """The JSON-RPC error a refusal carries, if it carries one."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = value.get("error") if isinstance(value, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return None
    cls = SessionExpired if status == 404 and session else RPCError
    return cls(error["code"], str(error.get("message", "")), error.get("data"), status_code=status)


class Body:
    """A response being read: its messages in order, whatever its content type.

    Attributes:
        response: the httpx response (streamed).
        decoder: the SSE decoder of a ``text/event-stream`` body, else ``None``.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        self.decoder = SSEDecoder() if kind == "text/event-stream" else None
        if self.decoder is None and kind != "application/json":
            raise ProtocolError(f"unexpected Content-Type {kind!r} in a {response.status_code}")
        self._chunks: AsyncIterator[bytes] | None = None
        self._json_done = False
        self.ended = False  # the stream ended (cleanly or cut: see decoder.mid_event)

    @property
    def session_id(self) -> str | None:
        value: str | None = self.response.headers.get("mcp-session-id")
        return value

    @property
    def last_event_id(self) -> str | None:
        return self.decoder.last_event_id if self.decoder is not None else None

    @property
    def retry_ms(self) -> int | None:
        return self.decoder.retry if self.decoder is not None else None

    async def next_message(self) -> Message | None:
        """The next JSON-RPC message; ``None`` at the end.

        Raises:
            TransportError: the connection dropped (the caller may resume).
        """
        if self.decoder is None:
            if self._json_done:
                return None
            self._json_done = True
            with translated():
                raw = await self.response.aread()
            self.ended = True
            return _message(raw)
        assert self._chunks is not None, "Body.next_message outside Transport.open"
        while True:
            event = self._next_event()
            if event is not None:
                return _message(event.data)
            if self.ended:
                return None
            with translated():
                chunk = await anext(self._chunks, b"")
            self.ended = not chunk
            self.decoder.receive_data(chunk)

    async def drain(self, grace: float) -> None:
        """Read the body to its end within ``grace`` seconds, else abort it.

        Why not just close it: httpx's body iterators are nested async
        generators, and closing the outer one while it waits at a ``yield``
        leaves the inner ones to the garbage collector (trio warns, rightly:
        their cleanup then runs outside any task). Reading on, or being
        cancelled *inside* a read (``grace`` 0 is a read in a cancelled
        scope), ends every one of them by return or exception instead. And
        a body read to its end leaves the connection reusable.
        """
        if self._chunks is None or self.ended:
            return
        with trio.move_on_after(grace), contextlib.suppress(TransportError):
            while not self.ended:
                with translated():
                    self.ended = not await anext(self._chunks, b"")

    def _next_event(self) -> ServerSentEvent | None:
        assert self.decoder is not None
        try:
            while (event := self.decoder.next_event()) is not None:
                # Comments (keepalives) and priming events (an id, empty data)
                # only move the decoder's state: last_event_id and retry.
                if isinstance(event, ServerSentEvent) and event.data:
                    return event
        except RemoteProtocolError as exc:
            raise ProtocolError(str(exc)) from None
        return None


class HTTPTransport:
    """One endpoint URL on an httpx client (a :class:`~flowkit_client._wire.Transport`).

    Args:
        url: the MCP endpoint (``http://127.0.0.1:8000/mcp``).
        headers: sent with every request (``Authorization``, ...).
        timeouts: connect/read/write deadlines.
    """

    header_layer = True
    closing_cancels = True  # where the revision says so (VersionPolicy.disconnect_cancels)
    always_listen = False

    def __init__(self, url: str, headers: Mapping[str, str], timeouts: Timeouts) -> None:
        self.url = url
        self.http = httpx.AsyncClient(
            headers={"accept": ACCEPT, **headers},
            timeout=httpx.Timeout(
                connect=timeouts.connect,
                read=timeouts.read,
                write=timeouts.write,
                pool=timeouts.connect,
            ),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    @asynccontextmanager
    async def open(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        session: bool = False,
        request_id: int | None = None,
    ) -> AsyncIterator[Body | None]:
        """Send a request; yield its :class:`Body`, or ``None`` for a 202 / empty 200.

        Raises:
            RPCError: a refusal with a JSON-RPC error body (:class:`SessionExpired`
                for a 404 when ``session`` is set).
            HTTPStatusError: any other status >= 300.
        """
        request = self.http.build_request(method, self.url, headers=headers, content=body)
        with translated():
            response = await self.http.send(request, stream=True)
        try:
            if response.status_code >= 300:
                with translated():
                    raw = await response.aread()
                error = _error(raw, response.status_code, session)
                if error is not None:
                    raise error
                if response.status_code == 404 and session:
                    raise SessionExpired(-32001, "session not found", status_code=404)
                raise HTTPStatusError(
                    f"{method} {self.url}: HTTP {response.status_code} "
                    f"{response.reason_phrase}: {raw[:200].decode('utf-8', 'replace')}",
                    status_code=response.status_code,
                )
            if response.status_code == 202 or (
                "content-type" not in response.headers
                and response.headers.get("content-length") == "0"
            ):
                yield None
                return
            reader = Body(response)
            chunks_gen: AsyncGenerator[bytes] = response.aiter_bytes()  # type: ignore[assignment]
            async with aclosing(chunks_gen) as chunks:
                reader._chunks = chunks
                try:
                    yield reader
                except BaseException:
                    await reader.drain(0.0)
                    raise
                await reader.drain(_DRAIN_GRACE)
        finally:
            await response.aclose()


def dumps(value: Any) -> bytes:
    """Compact JSON, as everything the client sends."""
    return orjson.dumps(value)
