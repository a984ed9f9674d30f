"""Issue 20, item 6: HTTP framing and headers.

* ``Content-Length`` with ``Transfer-Encoding``: 400 and the connection closed
  (what follows on the connection never runs as a second request);
* a repeated singleton header: 400 with a JSON-RPC error, whatever the server
  (the rule is the core's, so it holds for a mounted endpoint too);
* absolute-form request targets naming this server are served; naming another
  host is that host's refusal (403), as a ``Host`` header naming it would be.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio

from flowkit_http import MCPApp

from ..http._raw import JSON_HEADERS, initialize, raw_exchange, request
from ..http._serving import serving
from ._support import flowkit_serving, make_reliability_server, request_head

_INITIALIZE = request(
    "initialize",
    protocolVersion="2025-11-25",
    capabilities={},
    clientInfo={"name": "raw", "version": "0"},
)


async def test_content_length_with_transfer_encoding_is_400_and_closes_the_connection() -> None:
    server, _probe, _faults = make_reliability_server()
    with trio.fail_after(20):
        async with flowkit_serving(MCPApp(server)) as base:
            host = base.removeprefix("http://")
            headers = [
                ("host", host),
                ("accept", "application/json, text/event-stream"),
                ("content-type", "application/json"),
                ("content-length", "5"),
                ("transfer-encoding", "chunked"),
            ]
            smuggled = request_head("GET", "/mcp", [("host", host)]) + b"\r\n\r\n"
            body = f"{len(_INITIALIZE):x}\r\n".encode() + _INITIALIZE + b"\r\n0\r\n\r\n" + smuggled
            async with raw_exchange(base, request_head("POST", "/mcp", headers), body) as response:
                assert response.status == 400
                assert response.headers["connection"] == "close"
                assert response.headers["content-length"] == "0"
                # Nothing more: no answer to the smuggled GET, then the end.
                assert await response.body_chunk() == b""
                rest = b""
                while data := await response._stream.receive_some(65536):
                    rest += data
                assert rest == b""


_DUPLICATES = [
    ("host", "127.0.0.1:1", -32000),
    ("origin", "http://localhost:1", -32000),
    ("mcp-protocol-version", "2025-11-25", -32020),
    ("mcp-session-id", "x", -32000),
    ("mcp-method", "tools/list", -32020),
    ("mcp-name", "ticker", -32020),
]


@pytest.mark.parametrize(("name", "value", "code"), _DUPLICATES, ids=[d[0] for d in _DUPLICATES])
async def test_a_duplicated_singleton_header_is_refused_with_400(
    name: str, value: str, code: int
) -> None:
    """Sent twice, the first copy is what a gateway may have authorised; refuse both.

    Over HTTP/1.1 h11 already refuses a second ``Host`` (400, before any app);
    the core refuses it too, for servers and protocols that pass it on.
    """
    server, _probe, _faults = make_reliability_server()
    with trio.fail_after(20):
        async with serving(MCPApp(server)) as base:
            async with httpx.AsyncClient() as client:
                session = await initialize(client, base + "/mcp")
            host = base.removeprefix("http://")
            first = session.get(name, host if name == "host" else value)
            body = request("tools/list", id=3)
            headers = [(k, v) for k, v in session.items() if k != name]
            headers += [("content-length", str(len(body))), (name, first), (name, value)]
            if name != "host":
                headers.append(("host", host))
            async with raw_exchange(base, request_head("POST", "/mcp", headers), body) as response:
                status = response.status
                answer = await response.body_chunk()
    assert status == 400
    if name == "host":
        assert answer == b""  # h11's refusal
        head = [(b"host", host.encode()), (b"host", b"127.0.0.1:1")]
        reply = server.endpoint().check_request_head("POST", head)
        assert reply is not None
        assert reply.status == 400
        answer = reply.body
    error = orjson.loads(answer or b"{}")["error"]
    assert error["code"] == code
    assert name in error["message"].lower()


async def test_an_absolute_form_target_naming_this_server_is_served() -> None:
    server, _probe, _faults = make_reliability_server()
    with trio.fail_after(20):
        async with flowkit_serving(MCPApp(server)) as base:
            host = base.removeprefix("http://")
            headers = [
                ("host", "ignored.example"),  # RFC 9112 3.2.2: the target's authority wins
                *((k, v) for k, v in JSON_HEADERS.items()),
                ("content-length", str(len(_INITIALIZE))),
            ]
            head = request_head("POST", f"http://{host}/mcp", headers)
            async with raw_exchange(base, head, _INITIALIZE) as response:
                assert response.status == 200
                assert "mcp-session-id" in response.headers
            elsewhere = request_head("POST", "http://evil.example/mcp", headers)
            async with raw_exchange(base, elsewhere, _INITIALIZE) as response:
                assert response.status == 403  # the Host allow-list judges the target
