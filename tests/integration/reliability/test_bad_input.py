"""Issue 6, item 6: the bad-input matrix at the HTTP level.

Each row is one hostile or broken request written byte for byte to a real
hypercorn; each must get its specific status and JSON-RPC error (the table in
``docs/mcp.md``), a JSON body without a traceback, and create no state: the
number of sessions, calls and stored events is the same before and after.
"""

from __future__ import annotations

import attrs
import httpx
import orjson
import trio

from flowkit_http import MCPApp

from ..http._raw import ACCEPT, initialize, raw_exchange
from ..http._raw import request as _message
from ..http._serving import serving
from ._support import live_state, make_reliability_server, request_head

MAX_BODY = 64 * 1024
STATELESS_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


@attrs.frozen
class Row:
    name: str
    status: int
    code: int | None  # JSON-RPC error code; None: not an error body
    body: bytes = b""
    method: str = "POST"
    set: tuple[tuple[str, str], ...] = ()  # headers replaced or added
    drop: tuple[str, ...] = ()  # headers removed
    session: bool = True  # send the live session's id
    modern: bool = False  # 2026-07-28 headers
    version: str = "HTTP/1.1"
    chunked_size: int | None = None  # send this many body bytes chunked
    json_body: bool = True  # the response is our JSON (not hypercorn's own 400)


_CALL = _message("tools/call", name="ticker", arguments={"count": 1})
_STATELESS_CALL = _message(
    "tools/call", name="ticker", arguments={"count": 1}, _meta=STATELESS_META
)
_DEEP = (
    b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":' + b"[" * 5000 + b"]" * 5000 + b"}}"
)
_DEEP_ARGS = _message("tools/call", name="ticker", arguments={"count": 1}).replace(
    b'{"count":1}', b'{"count":' + b"[" * 1000 + b"]" * 1000 + b"}"
)

ROWS = [
    Row("foreign Origin", 403, -32000, _CALL, set=(("origin", "http://evil.example"),)),
    Row("Origin null", 403, -32000, _CALL, set=(("origin", "null"),)),
    Row("foreign Host", 403, -32000, _CALL, set=(("host", "evil.example"),)),
    Row("rebinding Host", 403, -32000, _CALL, set=(("host", "attacker.example:8000"),)),
    Row("absent Host (HTTP/1.0)", 403, -32000, _CALL, drop=("host",), version="HTTP/1.0"),
    Row("absent Host (HTTP/1.1)", 400, None, _CALL, drop=("host",), json_body=False),
    Row("Accept json only", 406, -32000, _CALL, set=(("accept", "application/json"),)),
    Row("Accept text/html", 406, -32000, _CALL, set=(("accept", "text/html"),)),
    Row("GET Accept json", 406, -32000, method="GET", set=(("accept", "application/json"),)),
    Row("absent Content-Type", 415, -32000, _CALL, drop=("content-type",)),
    Row("Content-Type text/plain", 415, -32000, _CALL, set=(("content-type", "text/plain"),)),
    Row(
        "Content-Type latin-1",
        415,
        -32000,
        _CALL,
        set=(("content-type", "application/json; charset=latin-1"),),
    ),
    Row(
        "unknown protocol version",
        400,
        -32022,
        _CALL,
        set=(("mcp-protocol-version", "1999-01-01"),),
    ),
    Row("absent session id", 400, -32000, _CALL, session=False),
    Row("unknown session id", 404, -32000, _CALL, set=(("mcp-session-id", "no-such-session"),)),
    Row("session id twice", 400, -32000, _CALL, set=(("mcp-session-id", "x"),)),
    Row(
        "initialize with session id",
        400,
        -32600,
        _message(
            "initialize",
            protocolVersion="2025-11-25",
            capabilities={},
            clientInfo={"name": "x", "version": "1"},
        ),
    ),
    Row(
        "GET without session",
        400,
        -32000,
        method="GET",
        session=False,
        set=(("accept", "text/event-stream"),),
    ),
    Row("DELETE unknown session", 404, -32000, method="DELETE", set=(("mcp-session-id", "gone"),)),
    Row("PUT", 405, -32000, _CALL, method="PUT"),
    Row("Content-Length over the limit", 413, -32000, set=(("content-length", str(MAX_BODY + 1)),)),
    Row("chunked body over the limit", 413, -32000, chunked_size=MAX_BODY + 1024),
    Row("deeply nested JSON", 400, -32700, _DEEP),
    Row("nested tool argument", 200, None, _DEEP_ARGS),  # isError result, checked below
    Row("invalid UTF-8", 400, -32700, b'{"jsonrpc":"2.0","id":1,"method":"ping\xff\xfe"}'),
    Row("not JSON", 400, -32700, b"{'jsonrpc': '2.0'"),
    Row("batch", 400, -32600, b"[" + _message("ping") + b"," + _message("ping", id=2) + b"]"),
    Row("empty batch", 400, -32600, b"[]"),
    Row("wrong jsonrpc", 400, -32600, b'{"jsonrpc":"1.0","id":1,"method":"ping"}'),
    Row("client response (2025)", 202, None, b'{"jsonrpc":"2.0","id":7,"result":{}}'),
    Row(
        "client response (2026)",
        400,
        -32600,
        b'{"jsonrpc":"2.0","id":7,"result":{}}',
        modern=True,
        session=False,
        set=(("mcp-method", "tools/call"),),
    ),
    Row("unknown method (2025)", 200, -32601, _message("tasks/list")),
    Row(
        "unknown method (2026)",
        404,
        -32601,
        _message("tasks/list", _meta=STATELESS_META),
        modern=True,
        session=False,
        set=(("mcp-method", "tasks/list"),),
    ),
    Row("unknown tool", 200, -32602, _message("tools/call", name="nope", arguments={})),
    Row(
        "arguments not an object", 200, -32602, _message("tools/call", name="ticker", arguments=[1])
    ),
    Row(
        "invalid tool arguments",
        200,
        None,
        _message("tools/call", name="ticker", arguments={"count": "x"}),
    ),
    Row(
        "Mcp-Method differs from body",
        400,
        -32020,
        _STATELESS_CALL,
        modern=True,
        session=False,
        set=(("mcp-method", "tools/list"), ("mcp-name", "ticker")),
    ),
    Row(
        "Mcp-Name differs from body",
        400,
        -32020,
        _STATELESS_CALL,
        modern=True,
        session=False,
        set=(("mcp-method", "tools/call"), ("mcp-name", "analyze_document")),
    ),
    Row(
        "Mcp-Method absent",
        400,
        -32020,
        _STATELESS_CALL,
        modern=True,
        session=False,
        set=(("mcp-name", "ticker"),),
    ),
    Row(
        "Mcp-Name absent",
        400,
        -32020,
        _STATELESS_CALL,
        modern=True,
        session=False,
        set=(("mcp-method", "tools/call"),),
    ),
    Row(
        "_meta version differs from header",
        400,
        -32020,
        _message(
            "tools/call",
            name="ticker",
            arguments={"count": 1},
            _meta={**STATELESS_META, "io.modelcontextprotocol/protocolVersion": "2025-11-25"},
        ),
        modern=True,
        session=False,
        set=(("mcp-method", "tools/call"), ("mcp-name", "ticker")),
    ),
    Row(
        "stateless call without _meta",
        400,
        -32602,
        _CALL,
        modern=True,
        session=False,
        set=(("mcp-method", "tools/call"), ("mcp-name", "ticker")),
    ),
    Row(
        "GET in the 2026 era",
        405,
        -32000,
        method="GET",
        modern=True,
        session=False,
        set=(("accept", "text/event-stream"),),
    ),
]


def _headers(row: Row, base: str, session_id: str) -> list[tuple[str, str]]:
    headers = {
        "host": base.removeprefix("http://"),
        "accept": ACCEPT,
        "content-type": "application/json",
        "mcp-protocol-version": "2026-07-28" if row.modern else "2025-11-25",
    }
    if row.session:
        headers["mcp-session-id"] = session_id
    extra: list[tuple[str, str]] = []
    for name, value in row.set:
        if name == "mcp-session-id" and row.session and value == "x":
            extra.append((name, value))  # a second Mcp-Session-Id
        else:
            headers[name] = value
    for name in row.drop:
        headers.pop(name, None)
    if row.method != "POST":
        headers.pop("content-type", None)
    pairs = list(headers.items()) + extra
    if row.chunked_size is not None:
        pairs.append(("transfer-encoding", "chunked"))
    elif "content-length" not in headers:
        pairs.append(("content-length", str(len(row.body))))
    return pairs


def _chunked(size: int) -> bytes:
    piece = b"x" * 8192
    out = bytearray()
    sent = 0
    while sent < size:
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        sent += len(piece)
    return bytes(out + b"0\r\n\r\n")


async def _send(base: str, row: Row, session_id: str) -> tuple[int, dict[str, str], bytes]:
    head = request_head(row.method, "/mcp", _headers(row, base, session_id), version=row.version)
    body = _chunked(row.chunked_size) if row.chunked_size is not None else row.body
    if any(name == "content-length" and value != str(len(body)) for name, value in row.set):
        body = b""  # the head lies about a body we never send: refused from the head
    async with raw_exchange(base, head, body) as response:
        content = b""
        while (chunk := await response.body_chunk()) is not None:
            content += chunk
        return response.status, response.headers, content


async def test_bad_input_matrix_gets_specific_errors_and_creates_no_state() -> None:
    server, _, _ = make_reliability_server()
    server.config = attrs.evolve(server.config, max_body_size=MAX_BODY)
    app = MCPApp(server)
    failures: list[str] = []
    with trio.fail_after(60):
        async with serving(app) as base, httpx.AsyncClient() as client:
            session = await initialize(client, base + "/mcp")
            before = live_state(app)
            for row in ROWS:
                status, headers, body = await _send(base, row, session["mcp-session-id"])
                problems: list[str] = []
                if status != row.status:
                    problems.append(f"status {status} != {row.status}")
                if b"Traceback" in body or b'File "' in body:
                    problems.append("traceback in the body")
                if row.json_body and body:
                    if headers.get("content-type") != "application/json":
                        problems.append(f"content-type {headers.get('content-type')}")
                    message = orjson.loads(body)
                    code = message.get("error", {}).get("code")
                    if code != row.code:
                        problems.append(f"code {code} != {row.code}")
                    if row.code is None and row.status == 200:
                        # An argument problem is a tool error the model can read.
                        assert message["result"]["isError"] is True, message
                if row.status == 405 and "allow" not in headers:
                    problems.append("405 without Allow")
                if live_state(app) != before:
                    problems.append(f"state changed: {before} -> {live_state(app)}")
                if problems:
                    failures.append(f"{row.name}: {'; '.join(problems)}; body {body[:200]!r}")
            # The session itself is unharmed.
            reply = await client.post(
                base + "/mcp", content=_message("ping", id=99), headers=session
            )
            assert reply.json() == {"jsonrpc": "2.0", "id": 99, "result": {}}
    assert not failures, "\n".join(failures)
    print(f"\nbad input: {len(ROWS)} rows, each its status and error, no state created")
