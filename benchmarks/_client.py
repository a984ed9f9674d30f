"""A thin raw MCP load client: HTTP/1.1 over trio sockets, SSE counted by hand.

The same client drives flowkit and the official server. It speaks just what a
benchmark needs — ``initialize`` → ``notifications/initialized`` →
``tools/call`` with a ``progressToken`` on one keep-alive connection per
session — and parses responses with as little Python per byte as it can:

* bodies are read in 64 KiB ``recv`` calls, de-chunked, cut at the last
  complete SSE event (``\\n\\n``);
* progress values are pulled out of a whole read at once with one compiled
  regex (C speed), each stamped with the read's ``perf_counter()`` (the
  moment the bytes reached user space);
* only the rare events (the final response, logs, keepalive comments) are
  decoded with orjson.

That streaming path is deliberately not :class:`flowkit.mcp.SSEDecoder`: it
measures the *server*, so it counts progress with one regex per read instead
of building an event object per line, which would make the client the
bottleneck of the throughput runs. Single (non-streamed) SSE responses, off the
measured path, are read with the decoder.

Its own CPU time is measured by the benchmarks (``resource.getrusage``) and
printed next to the results, so a client-bound result shows up as such.
"""

from __future__ import annotations

import re
import resource
import select
import socket as _stdsocket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import trio

from flowkit.mcp import ServerSentEvent, SSEDecoder

PROTOCOL_VERSION = "2025-11-25"
STATELESS_VERSION = "2026-07-28"  # no session: every request carries its own version
_META = "io.modelcontextprotocol/"
_PROGRESS = re.compile(rb'"progress"\s*:\s*(\d+(?:\.\d+)?)')
_LOG_METHOD = re.compile(rb'"method"\s*:\s*"notifications/message"')
_ID_KEY = re.compile(rb'"id"\s*:')
_STAMP = re.compile(rb'"message"\s*:\s*"t=(\d+\.\d+)"')


class ClientError(Exception):
    """The server answered something the benchmark did not expect."""


@dataclass
class CallResult:
    """What one tools/call delivered, as the client saw it."""

    t_sent: float = 0.0
    t_done: float = 0.0
    status: int = 0
    times: list[float] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)
    keepalives: int = 0
    stamps: list[float] = field(default_factory=list)  # (receipt - server stamp) per event
    response: dict[str, Any] | None = None
    bytes_read: int = 0

    @property
    def first_latency(self) -> float | None:
        return self.times[0] - self.t_sent if self.times else None

    @property
    def ok(self) -> bool:
        return self.response is not None and "result" in self.response


def cpu_seconds() -> float:
    """User + system CPU this process has used so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def raise_nofile(wanted: int) -> int:
    """Raise the soft open-file limit towards ``wanted``; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class _Body:
    """Incremental de-chunker for one HTTP/1.1 response body."""

    __slots__ = ("chunked", "done", "out", "pending", "remaining")

    def __init__(self, chunked: bool, length: int | None) -> None:
        self.chunked = chunked
        self.remaining = length if length is not None else -1  # -1: until close
        self.pending = b""
        self.done = length == 0 and not chunked

    def feed(self, data: bytes) -> bytes:
        """Take raw bytes, return the body bytes they complete."""
        if not self.chunked:
            if self.remaining >= 0:
                data = data[: self.remaining]
                self.remaining -= len(data)
                self.done = self.remaining == 0
            return data
        buf = self.pending + data if self.pending else data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while True:
            if self.remaining > 0:  # inside a chunk's data
                take = min(self.remaining, n - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self.remaining -= take
                if self.remaining:
                    break
                self.remaining = -2  # expect CRLF after data
            if self.remaining == -2:
                if n - pos < 2:
                    break
                pos += 2
                self.remaining = -1
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(buf[pos:eol].split(b";", 1)[0], 16)
            pos = eol + 2
            if size == 0:
                self.done = True  # ignore trailers
                pos = n
                break
            self.remaining = size
        self.pending = buf[pos:]
        return b"".join(out)


class Session:
    """One MCP session on one keep-alive HTTP/1.1 connection."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/mcp",
        *,
        rcvbuf: int | None = None,
        era: str = PROTOCOL_VERSION,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.rcvbuf = rcvbuf
        self.era = era
        self.sock: trio.socket.SocketType | None = None
        self.session_id: str | None = None
        self._next_id = 0
        self._raw = b""  # bytes read past the current response's headers

    async def connect(self) -> None:
        sock = trio.socket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_STREAM)
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        if self.rcvbuf:
            sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_RCVBUF, self.rcvbuf)
        try:
            await sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    async def reconnect_if_dropped(self) -> None:
        """Reconnect when the server closed the idle keep-alive connection.

        Between requests nothing is due from the server, so a readable socket
        means it closed the connection (hypercorn and uvicorn drop a kept-alive
        connection idle for 5 s). A real HTTP client retries a stale pooled
        connection the same way; without this, sessions opened early in a
        slow bulk handshake (a loaded machine) fail their first call.
        """
        if self.sock is not None and not self._raw:
            poller = select.poll()  # not select(): descriptors go past 1,024 here
            poller.register(self.sock.fileno(), select.POLLIN)
            if poller.poll(0):
                self.close()
        if self.sock is None:
            await self.connect()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    async def aclose(self) -> None:
        """Close the connection (no DELETE: we measure calls, not teardown)."""
        self.close()
        await trio.lowlevel.checkpoint()

    async def delete(self) -> int:
        """End the session on the server (DELETE); returns the HTTP status.

        A benchmark that opens many sessions on one server ends each one, so
        the server's session cap is not reached across repetitions.
        """
        assert self.session_id is not None
        head = [
            f"DELETE {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Mcp-Session-Id: {self.session_id}",
            f"MCP-Protocol-Version: {PROTOCOL_VERSION}",
            "Content-Length: 0",
        ]
        await self._send(("\r\n".join(head) + "\r\n\r\n").encode())
        status, headers = await self._read_head()
        await self._read_whole(self._body_for(headers))
        return status

    def _request_bytes(self, body: bytes, method: str = "", name: str = "") -> bytes:
        head = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            "Accept: application/json, text/event-stream",
            f"Content-Length: {len(body)}",
        ]
        if self.session_id is not None:
            head.append(f"Mcp-Session-Id: {self.session_id}")
            head.append(f"MCP-Protocol-Version: {PROTOCOL_VERSION}")
        elif self.era == STATELESS_VERSION:  # the 2026 era mirrors the body in headers
            head += [f"MCP-Protocol-Version: {self.era}", f"Mcp-Method: {method}"]
            if name:
                head.append(f"Mcp-Name: {name}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    async def _send(self, data: bytes) -> None:
        assert self.sock is not None
        view = memoryview(data)
        while view:
            sent = await self.sock.send(view)
            view = view[sent:]

    async def _recv(self, size: int = 65536) -> bytes:
        assert self.sock is not None
        data = await self.sock.recv(size)
        if not data:
            raise ClientError("connection closed by server")
        return data

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        buf = self._raw
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += await self._recv()
        head, self._raw = buf[:end], buf[end + 4 :]
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def _body_for(self, headers: Mapping[str, str]) -> _Body:
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = None if chunked else int(headers.get("content-length", "-1"))
        return _Body(chunked, None if length == -1 else length)

    async def _read_whole(self, body: _Body) -> bytes:
        out = [body.feed(self._raw)] if self._raw else []
        self._raw = b""
        while not body.done:
            out.append(body.feed(await self._recv()))
        return b"".join(out)

    async def post(self, message: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """POST one JSON-RPC message; return status, headers and the whole body."""
        await self._send(self._request_bytes(orjson.dumps(message)))
        status, headers = await self._read_head()
        data = await self._read_whole(self._body_for(headers))
        return status, headers, data

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    @staticmethod
    def _single_response(headers: Mapping[str, str], data: bytes) -> dict[str, Any]:
        if headers.get("content-type", "").startswith("text/event-stream"):
            decoder = SSEDecoder()
            decoder.receive_data(data)
            for event in decoder:
                if isinstance(event, ServerSentEvent) and event.data:
                    msg = orjson.loads(event.data)
                    if "id" in msg and ("result" in msg or "error" in msg):
                        return msg  # type: ignore[no-any-return]
            raise ClientError(f"no response in SSE body {data[:200]!r}")
        return orjson.loads(data)  # type: ignore[no-any-return]

    async def initialize(self) -> dict[str, Any]:
        """Connect if needed, then initialize and send notifications/initialized.

        In the 2026-07-28 era there is no handshake: this only connects.
        """
        if self.sock is None:
            await self.connect()
        if self.era == STATELESS_VERSION:
            return {}
        status, headers, data = await self.post(
            {
                "jsonrpc": "2.0",
                "id": self._new_id(),
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "flowkit-bench", "version": "0"},
                },
            }
        )
        if status != 200:
            raise ClientError(f"initialize: HTTP {status}: {data[:200]!r}")
        self.session_id = headers.get("mcp-session-id")
        reply = self._single_response(headers, data)
        status, _, data = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status not in (200, 202):
            raise ClientError(f"notifications/initialized: HTTP {status}: {data[:200]!r}")
        return reply

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        progress: bool = True,
        read_size: int = 65536,
        read_interval: float = 0.0,
        on_read: Any = None,
        on_open: Any = None,
        stamps: bool = False,
    ) -> CallResult:
        """Call a tool and read its SSE stream to the final response.

        ``read_size``/``read_interval`` make a slow consumer: at most
        ``read_size`` bytes per ``recv``, then a sleep. ``on_read(result)`` is
        called after each read (the slow-consumer benchmark samples server
        memory from it); ``on_open(result)`` once the response head is in.
        ``stamps``: collect receipt time minus the server's ``t=<monotonic>``
        progress message per event (``perf_counter`` is ``CLOCK_MONOTONIC``
        on Linux, the same clock in both processes).
        """
        rid = self._new_id()
        params: dict[str, Any] = {"name": name, "arguments": dict(arguments)}
        meta: dict[str, Any] = {"progressToken": f"p{rid}"} if progress else {}
        if self.era == STATELESS_VERSION:
            meta[_META + "protocolVersion"] = self.era
            meta[_META + "clientCapabilities"] = {}
        if meta:
            params["_meta"] = meta
        res = CallResult()
        kept = self.sock
        await self.reconnect_if_dropped()
        reused = kept is not None and self.sock is kept  # a kept-alive connection, not a new one
        payload = self._request_bytes(
            orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}),
            "tools/call",
            name,
        )
        res.t_sent = time.perf_counter()
        try:
            await self._send(payload)
            status, headers = await self._read_head()
        except (ClientError, ConnectionResetError, BrokenPipeError) as exc:
            if (
                not reused
                or self._raw
                or (
                    isinstance(exc, ClientError) and not exc.args[0].startswith("connection closed")
                )
            ):
                raise
            # A kept-alive connection the server closed as the request went
            # out (its keep-alive timer fired after reconnect_if_dropped
            # looked), with not a byte of answer: the request was not served,
            # so it goes again on a new connection, as a pooled HTTP client
            # retries a stale connection. Without this, 1-9 % of the idle
            # benchmark's 3,000 calls failed on a loaded machine.
            self.close()
            await self.connect()
            res.t_sent = time.perf_counter()
            await self._send(payload)
            status, headers = await self._read_head()
        res.status = status
        if on_open is not None:
            on_open(res)
        body = self._body_for(headers)
        if status != 200 or not headers.get("content-type", "").startswith("text/event-stream"):
            data = await self._read_whole(body)
            res.t_done = time.perf_counter()
            if status == 200:
                res.response = orjson.loads(data)
            return res
        # The measured path: SSE counted by regex, not decoded (see the module docstring).
        pending = b""
        crlf: bool | None = None  # sse-starlette ends lines with CRLF
        raw, self._raw = self._raw, b""
        times = res.times
        prog = res.progress
        while True:
            if raw:
                now = time.perf_counter()
                res.bytes_read += len(raw)
                data = body.feed(raw)
                if data:
                    if crlf is None:
                        crlf = b"\r\n" in data
                    if crlf:
                        data = data.replace(b"\r\n", b"\n")
                    buf = pending + data if pending else data
                    cut = buf.rfind(b"\n\n")
                    if cut >= 0:
                        complete, pending = buf[: cut + 2], buf[cut + 2 :]
                        values = _PROGRESS.findall(complete)
                        if values:
                            prog.extend(map(float, values))
                            times.extend([now] * len(values))
                            if stamps:
                                res.stamps.extend(now - float(v) for v in _STAMP.findall(complete))
                        if b"\n:" in complete or complete.startswith(b":"):
                            res.keepalives += complete.count(b"\n:") + complete.startswith(b":")
                        if _LOG_METHOD.search(complete) or _ID_KEY.search(complete):
                            self._rare_events(complete, rid, res)
                    else:
                        pending = buf
                if on_read is not None:
                    on_read(res)
                if res.response is not None or body.done:
                    break
                if read_interval:
                    await trio.sleep(read_interval)
            raw = await self._recv(read_size)
        res.t_done = time.perf_counter()
        if not body.done:
            # The final response is in; drain the terminating chunk so the
            # connection can carry the next request.
            while not body.done:
                body.feed(await self._recv())
        return res

    @staticmethod
    def _rare_events(complete: bytes, rid: int, res: CallResult) -> None:
        for event in complete.split(b"\n\n"):
            if not (_LOG_METHOD.search(event) or _ID_KEY.search(event)):
                continue
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                msg = orjson.loads(line[5:])
                if msg.get("method") == "notifications/message":
                    res.logs.append(msg.get("params", {}).get("data"))
                elif msg.get("id") == rid and ("result" in msg or "error" in msg):
                    res.response = msg


async def open_session(host: str, port: int, path: str = "/mcp", **kw: Any) -> Session:
    s = Session(host, port, path, **kw)
    try:
        await s.initialize()
    except BaseException:
        s.close()
        raise
    return s
