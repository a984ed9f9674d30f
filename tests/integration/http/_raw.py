"""Raw HTTP helpers: httpx requests and SSE read by flowkit.mcp.SSEDecoder, no MCP SDK involved."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import trio

from flowkit.mcp import ServerSentEvent, SSEComment, SSEDecoder

ACCEPT = "application/json, text/event-stream"
JSON_HEADERS = {"accept": ACCEPT, "content-type": "application/json"}


Event = ServerSentEvent | SSEComment


def sse_events(body: bytes) -> list[Event]:
    """Every event of a complete SSE body, decoded by the core's decoder."""
    decoder = SSEDecoder()
    if body:
        decoder.receive_data(body)
    decoder.receive_data(b"")
    events = list(decoder)
    assert not decoder.mid_event, f"SSE body cut mid-event: {body[-200:]!r}"
    return events


def messages(events: Iterable[Event]) -> list[Any]:
    """The JSON-RPC messages among ``events``: not comments, not the empty priming event."""
    return [orjson.loads(e.data) for e in events if isinstance(e, ServerSentEvent) and e.data]


def last_event_id(events: Iterable[Event], default: str = "") -> str:
    """The id of the last event among ``events`` that carried one (for ``Last-Event-ID``)."""
    for event in events:
        if isinstance(event, ServerSentEvent) and event.id:
            default = event.id
    return default


def request(method: str, id: int | str | None = 1, **params: Any) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        message["id"] = id
    if params:
        message["params"] = params
    return orjson.dumps(message)


async def initialize(
    client: httpx.AsyncClient, url: str, capabilities: dict[str, Any] | None = None
) -> dict[str, str]:
    """Handshake; returns the headers later requests of the session need."""
    body = request(
        "initialize",
        protocolVersion="2025-11-25",
        capabilities=capabilities or {},
        clientInfo={"name": "raw", "version": "0"},
    )
    response = await client.post(url, content=body, headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    headers = {
        **JSON_HEADERS,
        "mcp-session-id": response.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    sent = await client.post(
        url, content=request("notifications/initialized", id=None), headers=headers
    )
    assert sent.status_code == 202
    return headers


def call(id: int | str, name: str, arguments: dict[str, Any], token: str | None = "t") -> bytes:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return request("tools/call", id=id, **params)


class RawResponse:
    """An HTTP/1.1 response read off a bare trio socket, incrementally.

    httpx cannot stop reading a streamed body part-way under trio without
    leaving async generators to the garbage collector (a ResourceWarning, an
    error in this suite), and disconnecting mid-stream is exactly what these
    tests do; so streaming tests speak HTTP/1.1 themselves.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = b""
        self.decoder = SSEDecoder()
        self._ended = False
        self._chunked = False
        self._remaining: int | None = None
        self.status = 0
        self.headers: dict[str, str] = {}

    async def _fill(self) -> bool:
        data = await self._stream.receive_some(65536)
        self._buffer += data
        return bool(data)

    async def _head(self) -> None:
        while b"\r\n\r\n" not in self._buffer:
            if not await self._fill():
                raise ConnectionError("connection closed before the response head")
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if not self._chunked:
            self._remaining = int(self.headers.get("content-length", "0"))

    async def body_chunk(self) -> bytes | None:
        """The next piece of the body, or ``None`` at its end."""
        if self._ended:
            return None
        if not self._chunked:
            assert self._remaining is not None
            while len(self._buffer) < self._remaining:
                if not await self._fill():
                    raise ConnectionError("connection closed mid-body")
            data, self._buffer = self._buffer[: self._remaining], self._buffer[self._remaining :]
            self._ended = True
            return data
        while b"\r\n" not in self._buffer:
            if not await self._fill():
                raise ConnectionError("connection closed mid-chunk")
        size_line, rest = self._buffer.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(rest) < size + 2:
            if not await self._fill():
                raise ConnectionError("connection closed mid-chunk")
            rest = self._buffer.split(b"\r\n", 1)[1]
        data, self._buffer = rest[:size], rest[size + 2 :]
        if size == 0:
            self._ended = True
            return None
        return data

    async def read(self, stop: int | None = None) -> tuple[list[Event], bool]:
        """SSE events until ``stop`` data events were read; and whether the body ended."""
        events: list[Event] = []
        while stop is None or sum(isinstance(e, ServerSentEvent) for e in events) < stop:
            chunk = await self.body_chunk()
            if chunk is None:
                return events, True
            self.decoder.receive_data(chunk)
            events += self.decoder
        return events, False

    async def aclose(self) -> None:
        await self._stream.aclose()


@asynccontextmanager
async def raw_request(
    base: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    receive_buffer: int | None = None,
) -> AsyncIterator[RawResponse]:
    """Send one request on a fresh connection; closing the block disconnects."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}:{port}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = "\r\n".join(lines).encode("latin-1")
    async with raw_exchange(base, head, body, receive_buffer=receive_buffer) as response:
        yield response


@asynccontextmanager
async def raw_exchange(
    base: str, head: bytes, body: bytes = b"", *, receive_buffer: int | None = None
) -> AsyncIterator[RawResponse]:
    """Send ``head`` (request line and headers, CRLF-separated, no blank line) and ``body``.

    Written byte for byte, so Host, Content-Length and the HTTP version are the caller's.
    """
    host, port = base.removeprefix("http://").rsplit(":", 1)
    sock = trio.socket.socket()
    if receive_buffer is not None:  # a slow reader's small TCP window
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, receive_buffer)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    await stream.send_all(head + b"\r\n\r\n" + body)
    response = RawResponse(stream)
    try:
        await response._head()
        yield response
    finally:
        await response.aclose()
