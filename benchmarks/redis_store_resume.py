"""Resume latency on another instance: a call runs on A, its client resumes on B.

Part of ``python -m benchmarks.redis_store`` (see there). Two ``flowkit serve
--demo`` processes share one Redis. Each round: initialize on A, call
``ticker(count, interval_ms)`` on A, read ``cut`` ticks and drop the
connection, then GET with ``Last-Event-ID`` on B, which replays what A stored
and follows A's call live through the store to its result. Measured:

* **resume**: GET sent on B -> its first event received (the session lookup,
  the replay read, the first write; a 409 while A has not yet stored the
  disconnect is retried and counted in);
* **live lag**: how late each tick arrives through B compared with the
  ticker's own schedule (tick ``i`` is due at ``start + i * interval``); the
  start is estimated from the ticks read directly on A (the earliest
  ``arrival - i * interval``), so a tick read on A has lag ~0 by construction
  and the lag through B is what the store path adds: A's append, the pub/sub
  wake-up, B's read.
"""

from __future__ import annotations

import socket as _stdsocket
import time
from typing import Any

import orjson
import trio

from flowkit.mcp import ServerSentEvent, SSEDecoder

from . import _servers
from ._client import PROTOCOL_VERSION, _Body, open_session
from ._util import median

__all__ = ["resume_latency"]


class _Stream:
    """One raw HTTP/1.1 request whose SSE body is read event by event, with arrival times."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = trio.socket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_STREAM)
        self.sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        self.decoder = SSEDecoder()
        self.status = 0
        self._body: _Body | None = None
        self._raw = b""

    async def request(self, method: str, headers: dict[str, str], body: bytes = b"") -> None:
        await self.sock.connect((_servers.HOST, self.port))
        head = [f"{method} {_servers.PATH} HTTP/1.1", f"Host: {_servers.HOST}:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        data = memoryview(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        while data:
            data = data[await self.sock.send(data) :]
        buf = b""
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += await self._recv()
        lines = buf[:end].decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        chunked = "chunked" in fields.get("transfer-encoding", "").lower()
        length = None if chunked else int(fields.get("content-length", "0"))
        self._body = _Body(chunked, length)
        self._raw = buf[end + 4 :]

    async def _recv(self) -> bytes:
        data = await self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        return data

    async def events(self) -> list[tuple[float, ServerSentEvent]]:
        """The data events of the next read (empty at the body's end), with their arrival time."""
        assert self._body is not None
        while not self._body.done:
            data, self._raw = (self._raw, b"") if self._raw else (await self._recv(), b"")
            now = time.perf_counter()
            self.decoder.receive_data(self._body.feed(data))
            found = [(now, e) for e in self.decoder if isinstance(e, ServerSentEvent) and e.data]
            if found:
                return found
        return []

    def close(self) -> None:
        self.sock.close()


def _headers(session_id: str) -> dict[str, str]:
    return {"Mcp-Session-Id": session_id, "MCP-Protocol-Version": PROTOCOL_VERSION}


async def _round(
    a: int, b: int, count: int, interval_ms: int, cut: int, out: dict[str, list[float]]
) -> None:
    session = await open_session(_servers.HOST, a)
    try:
        assert session.session_id is not None
        headers = _headers(session.session_id)
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "ticker",
                "arguments": {"count": count, "interval_ms": interval_ms},
                "_meta": {"progressToken": "t"},
            },
        }
        post = _Stream(a)
        direct: list[tuple[float, int]] = []
        last_id = ""
        try:
            await post.request(
                "POST",
                {
                    **headers,
                    "Content-Type": "application/json",
                    "Accept": "application/json, text/event-stream",
                },
                orjson.dumps(call),
            )
            while len(direct) < cut:
                for arrived, event in await post.events():
                    last_id = event.id or last_id
                    message = orjson.loads(event.data)
                    if message.get("method") == "notifications/progress":
                        direct.append((arrived, message["params"]["progress"]))
        finally:
            post.close()  # the cut
        start = min(arrived - tick * interval_ms / 1000 for arrived, tick in direct)
        asked = time.perf_counter()
        while True:
            get = _Stream(b)
            await get.request(
                "GET", {**headers, "Accept": "text/event-stream", "Last-Event-ID": last_id}
            )
            if get.status != 409:  # 409: A has not yet stored that its client left
                break
            get.close()
            out["conflicts"].append(1)
            await trio.sleep(0.005)
        try:
            assert get.status == 200, get.status
            first = True
            done = False
            while not done:
                batch = await get.events()
                if not batch:
                    raise RuntimeError("the resumed stream ended before the result")
                for arrived, event in batch:
                    if first:
                        out["resume_ms"].append((arrived - asked) * 1000)
                        first = False
                    message = orjson.loads(event.data)
                    if "result" in message:
                        done = True
                    elif message.get("method") == "notifications/progress":
                        tick = message["params"]["progress"]
                        due = start + tick * interval_ms / 1000
                        if due > asked:  # made after the resume: it came live through B
                            out["live_lag_ms"].append((arrived - due) * 1000)
        finally:
            get.close()
    finally:
        await session.aclose()


def resume_latency(url: str, rounds: int, count: int = 60, interval_ms: int = 10) -> dict[str, Any]:
    """Median resume latency and live lag through another instance, ``rounds`` rounds."""
    env = {"FLOWKIT_REDIS_URL": url}
    out: dict[str, list[float]] = {"resume_ms": [], "live_lag_ms": [], "conflicts": []}
    with _servers.running("flowkit", env=env) as a, _servers.running("flowkit", env=env) as b:
        for _ in range(rounds):
            trio.run(_round, a.port, b.port, count, interval_ms, 5, out)
    lags = sorted(out["live_lag_ms"])
    return {
        "resume_ms": median(out["resume_ms"]),
        "live_lag_ms": median(lags),
        "live_lag_p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "live_ticks": len(lags),
        "conflicts_per_resume": len(out["conflicts"]) / rounds,
    }
