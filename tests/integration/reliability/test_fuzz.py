"""Issue 6, item 1: fuzzing, on top of ``tests/flowkit/mcp/test_endpoint.py``'s strategies.

Core (sans-IO, no event loop), reusing that module's bodies, header sets and
its ``_check`` (every refusal is a documented status + JSON-RPC code):

* the lower-level parsers only ever raise the core's own
  ``RemoteProtocolError`` -- never ``KeyError``, ``UnicodeDecodeError``,
  ``RecursionError``...;
* sequences of requests (with session ids and event ids harvested from earlier
  answers spliced into later requests) only produce documented actions, and
  only a 200 ``initialize`` creates a session;
* deeply nested JSON anywhere in a message is answered, never raised.

HTTP: arbitrary methods, header sets and bodies against a running ``flowkit
serve --demo`` over raw sockets: never a 5xx other than a documented 503,
never a hang (socket timeouts), never a traceback in a response, and the
server's own output has no traceback either.

``FLOWKIT_FUZZ_LONG=1`` (see ``tests/_budget.py``) raises the core budgets to
at least 100,000 examples in total; each test prints how many it ran.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowkit.mcp import RemoteProtocolError, Reply, StartCall, parse_message
from flowkit.mcp._headers import (
    accepts,
    content_type_is_json,
    host_allowed,
    origin_allowed,
    parse_head,
)
from flowkit.mcp._sse import parse_event_id
from flowkit.mcp._stateless import decode_header_value

from ..._budget import examples
from ...flowkit.mcp._client import Client, make_endpoint
from ...flowkit.mcp.test_endpoint import DOCUMENTED, _check, bodies, header_sets, header_values

COUNTS: dict[str, int] = {}


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    if COUNTS:
        print("\nfuzz examples run: " + ", ".join(f"{k}={v}" for k, v in sorted(COUNTS.items())))


text_values = st.one_of(
    st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))
)


@settings(max_examples=examples(300, 50_000), deadline=None)
@given(body=bodies | st.binary(max_size=256), header=text_values, method=st.text(max_size=8))
def test_core_parsers_only_raise_typed_protocol_errors(
    body: bytes, header: str, method: str
) -> None:
    _count("core_parsers")
    refusal: RemoteProtocolError | None = None
    try:
        parse_message(body)
    except RemoteProtocolError as exc:  # the only exception allowed out
        refusal = exc
    if refusal is not None:
        assert refusal.http_status in DOCUMENTED
        assert refusal.code in DOCUMENTED[refusal.http_status]
    accepts(header, "application/json")
    content_type_is_json(header)
    host_allowed(header, ("localhost:*", "127.0.0.1:*", "[::1]:*"))
    origin_allowed(header, ("http://localhost:*",))
    parse_event_id(header)
    parse_event_id(header.encode("utf-8", "surrogatepass"))
    decode_header_value(header)
    parse_head(method, [(b"x", header.encode("utf-8", "surrogatepass")), (b"accept", body[:40])])


step = st.tuples(
    st.sampled_from(["POST", "POST", "POST", "GET", "DELETE"]),
    header_sets,
    bodies,
    st.sampled_from(["none", "own", "harvested", "event"]),
)


@settings(
    max_examples=examples(300, 30_000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=st.lists(step, min_size=1, max_size=12), data=st.data())
def test_core_message_sequences_only_produce_documented_actions(
    steps: list[tuple[str, list[tuple[bytes, bytes]], bytes, str]], data: st.DataObject
) -> None:
    _count("core_sequences")
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    session_ids: list[bytes] = [client.session_id.encode()] if client.session_id else []
    event_ids: list[bytes] = [b"1:0"]
    for method, headers, body, splice in steps:
        headers = list(headers)
        if splice == "own":
            headers = client.headers(headers)
        elif splice == "harvested" and session_ids:
            headers.append((b"mcp-session-id", data.draw(st.sampled_from(session_ids))))
        elif splice == "event":
            headers = client.headers(headers)
            headers.append((b"last-event-id", data.draw(st.sampled_from(event_ids))))
        sessions = len(endpoint.sessions)
        action = endpoint.receive_request(method, headers, body)
        _check(action)
        if len(endpoint.sessions) > sessions:
            assert isinstance(action, Reply)
            assert action.status == 200
            session_id = dict(action.headers)[b"mcp-session-id"]
            session_ids.append(session_id)
        if isinstance(action, StartCall):
            _, _, first = action.stream.open()
            if first.startswith(b"id: "):
                event_ids.append(first.split(b"\n", 1)[0][4:])
            if data.draw(st.booleans()):
                endpoint.stream_finished(action.stream, disconnected=data.draw(st.booleans()))


nested = st.integers(1, 3000).flatmap(
    lambda depth: st.tuples(st.just(depth), st.sampled_from([b"[", b'{"a":']))
)


@settings(max_examples=examples(60, 30_000), deadline=None)
@given(shape=nested, where=st.sampled_from(["body", "params", "arguments", "meta"]))
def test_core_deep_nesting_is_answered_not_raised(shape: tuple[int, bytes], where: str) -> None:
    _count("core_nesting")
    depth, opener = shape
    closer = b"]" if opener == b"[" else b"}"
    deep = opener * depth + b"1" + closer * depth
    template = {
        "body": deep,
        "params": b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":'
        + deep
        + b"}}",
        "arguments": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"count","arguments":{"n":'
        + deep
        + b"}}}",
        "meta": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"count","arguments":{},"_meta":'
        + deep
        + b"}}",
    }[where]
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    _check(client.post(template))


# -- HTTP level ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, Path]]:
    """``flowkit serve --demo`` on 127.0.0.1; yields (port, a session id, its output file)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowkit_http", "serve", "--demo", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while b"serving MCP at" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "flowkit serve did not start"
            time.sleep(0.02)
        init = orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "fuzz", "version": "0"},
                },
            }
        )
        status, headers, _ = _exchange(
            port,
            "POST",
            [
                (b"accept", b"application/json, text/event-stream"),
                (b"content-type", b"application/json"),
            ],
            init,
        )
        assert status == 200
        yield port, headers[b"mcp-session-id"].decode(), log
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def _exchange(
    port: int, method: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request on a fresh socket: its head and (unless it is a stream) its body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        lines = [f"{method} /mcp HTTP/1.1".encode(), f"host: 127.0.0.1:{port}".encode()]
        lines += [name + b": " + value for name, value in headers]
        lines.append(f"content-length: {len(body)}".encode())
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)  # socket.timeout -> the test fails: a hang
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.split(b"\r\n")
        status = int(status_line.split()[1])
        parsed = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            parsed[name.strip().lower()] = value.strip()
        length = parsed.get(b"content-length")
        if length is not None:  # a complete reply: read it all (a stall fails the test)
            while len(rest) < int(length):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        # else an SSE stream: the head (and what came with it) is enough
        return status, parsed, rest


safe_values = header_values.filter(lambda v: b"\r" not in v and b"\n" not in v and b"\x00" not in v)
http_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                b"origin",
                b"accept",
                b"content-type",
                b"mcp-protocol-version",
                b"mcp-session-id",
                b"last-event-id",
                b"mcp-method",
                b"mcp-name",
                b"authorization",
                b"x-other",
            ]
        ),
        safe_values,
    ),
    max_size=6,
)


@settings(
    max_examples=examples(400, 2_000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["POST", "POST", "GET", "DELETE", "PUT", "OPTIONS"]),
    headers=http_headers,
    body=bodies,
    own_session=st.booleans(),
)
def test_http_fuzz_never_500_never_hangs_never_leaks_a_traceback(
    demo_server: tuple[int, str, Path],
    method: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    own_session: bool,
) -> None:
    _count("http")
    port, session_id, _ = demo_server
    if own_session:
        headers = [*headers, (b"mcp-session-id", session_id.encode())]
    status, response_headers, content = _exchange(
        port, method, headers, body if method == "POST" else b""
    )
    assert status < 500 or status == 503, (status, content[:300])
    assert b"Traceback" not in content
    assert b'File "' not in content
    if response_headers.get(b"content-type") == b"application/json" and content:
        message: Any = orjson.loads(content)
        if "error" in message:
            assert status in DOCUMENTED
            assert message["error"]["code"] in DOCUMENTED[status], (status, message)


def test_http_fuzz_server_output_has_no_traceback(demo_server: tuple[int, str, Path]) -> None:
    """Runs after the HTTP fuzz (same module server): the server logged no traceback."""
    _, _, log = demo_server
    text = log.read_bytes()
    assert b"Traceback" not in text, text.decode(errors="replace")
