"""Every refusal the endpoint answers before touching a session.

Spec: 2025-11-25 "Transports" -> "Security Warning", "Sending Messages to the
Server", "Protocol Version Header", "Session Management"; MCP-CHECKLIST A2,
A3, A7, B2, B3.
"""

from __future__ import annotations

import orjson
import pytest

from flowkit.mcp import (
    PARSE_ERROR,
    SERVER_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    EndpointConfig,
    Reply,
    _headers,
    host_allowed,
    origin_allowed,
)
from flowkit.mcp._headers import MEMO_MAX_VALUE, accepts, content_type_is_json

from ._client import Client, body_json, make_endpoint

PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
INIT = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {}},
    }
)
BASE = [
    (b"host", b"localhost:8000"),
    (b"accept", b"application/json, text/event-stream"),
    (b"content-type", b"application/json"),
]


def _with(
    headers: list[tuple[bytes, bytes]], name: bytes, value: bytes | None
) -> list[tuple[bytes, bytes]]:
    out = [h for h in headers if h[0] != name]
    if value is not None:
        out.append((name, value))
    return out


def _post(headers: list[tuple[bytes, bytes]], body: bytes = INIT, **kw: object) -> Reply:
    endpoint = make_endpoint(**kw)  # type: ignore[arg-type]
    head = endpoint.check_request_head("POST", headers)
    action = endpoint.receive_request("POST", headers, body)
    assert isinstance(action, Reply)
    if head is not None:
        assert head.status == action.status
    # "Rejected requests must not create sessions."
    if action.status != 200:
        assert len(endpoint.sessions) == 0
    return action


def test_well_formed_initialize_is_accepted() -> None:
    reply = _post(BASE)
    assert reply.status == 200
    assert (b"content-type", b"application/json") in reply.headers


@pytest.mark.parametrize("method", ["PUT", "PATCH", "OPTIONS", "HEAD", "TRACE"])
def test_unknown_method_is_405_with_allow(method: str) -> None:
    """Checklist A7: unknown HTTP method -> 405 with Allow."""
    endpoint = make_endpoint()
    reply = endpoint.receive_request(method, BASE, b"")
    assert isinstance(reply, Reply)
    assert reply.status == 405
    assert dict(reply.headers)[b"allow"] == b"POST, GET, DELETE"
    assert endpoint.check_request_head(method, BASE) == reply


def test_disabled_get_and_delete_are_405() -> None:
    """ "Listening for Messages from the Server": GET may be refused with 405."""
    endpoint = make_endpoint(EndpointConfig(get_stream=False, allow_delete=False))
    for method in ("GET", "DELETE"):
        reply = endpoint.receive_request(method, BASE, b"")
        assert isinstance(reply, Reply)
        assert reply.status == 405
        assert dict(reply.headers)[b"allow"] == b"POST"


@pytest.mark.parametrize(
    "origin", [b"https://evil.example", b"null", b"http://localhost.evil.com:80"]
)
def test_foreign_origin_is_403(origin: bytes) -> None:
    """ "Security Warning": Origin present and invalid -> 403, body a JSON-RPC error without id."""
    reply = _post([*BASE, (b"origin", origin)])
    assert reply.status == 403
    assert "id" not in body_json(reply)
    assert body_json(reply)["error"]["code"] == SERVER_ERROR


@pytest.mark.parametrize(
    "origin",
    [b"http://localhost:3000", b"http://127.0.0.1", b"HTTP://LOCALHOST:1", b"https://[::1]:8443"],
)
def test_local_origins_are_allowed_by_default(origin: bytes) -> None:
    assert _post([*BASE, (b"origin", origin)]).status == 200


def test_origin_allow_list_is_configurable() -> None:
    config = EndpointConfig(allowed_origins=("https://app.example",))
    assert _post([*BASE, (b"origin", b"https://app.example")], config=config).status == 200
    assert _post([*BASE, (b"origin", b"http://localhost:1")], config=config).status == 403
    assert (
        _post(
            [*BASE, (b"origin", b"https://x")], config=EndpointConfig(allowed_origins=None)
        ).status
        == 200
    )


@pytest.mark.parametrize(
    "host", [b"evil.example.com", b"evil.example.com:8000", b"localhost.evil", None]
)
def test_dns_rebinding_host_is_403(host: bytes | None) -> None:
    """Host allow-list for local servers; the conformance suite expects 403."""
    assert _post(_with(BASE, b"host", host)).status == 403


@pytest.mark.parametrize(
    "host", [b"localhost", b"localhost:8000", b"127.0.0.1:1", b"[::1]:9", b"LOCALHOST:80"]
)
def test_local_hosts_pass(host: bytes) -> None:
    assert _post(_with(BASE, b"host", host)).status == 200


def test_host_check_can_be_disabled_or_pinned() -> None:
    assert (
        _post(
            _with(BASE, b"host", b"mcp.example"), config=EndpointConfig(allowed_hosts=None)
        ).status
        == 200
    )
    pinned = EndpointConfig(allowed_hosts=("mcp.example:443",))
    assert _post(_with(BASE, b"host", b"mcp.example:443"), config=pinned).status == 200
    assert _post(_with(BASE, b"host", b"mcp.example:80"), config=pinned).status == 403


@pytest.mark.parametrize(
    "accept",
    [
        b"application/json, text/event-stream",
        b"*/*",
        b"application/*, text/*",
        b"Application/JSON; charset=utf-8, TEXT/EVENT-STREAM",
        b"application/json;q=0.9, text/event-stream;q=0.1",
        b"text/event-stream, */*;q=0.5",
    ],
)
def test_tolerant_accept(accept: bytes) -> None:
    """Checklist D: over-strict Accept parsing is a known pitfall."""
    assert _post(_with(BASE, b"accept", accept)).status == 200


@pytest.mark.parametrize(
    "accept",
    [
        b"application/json",
        b"text/event-stream",
        b"text/html",
        b"application/json, text/event-stream;q=0",
        b"*/*;q=0",
    ],
)
def test_insufficient_accept_is_406(accept: bytes) -> None:
    """ "Sending Messages": Accept MUST list application/json and text/event-stream."""
    assert _post(_with(BASE, b"accept", accept)).status == 406


def test_accept_helper_specificity() -> None:
    assert accepts(None, "application/json")
    assert not accepts("text/*;q=0, */*", "text/event-stream")
    assert accepts("text/*;q=0, text/event-stream", "text/event-stream")
    assert not accepts("garbage", "text/event-stream")
    assert not accepts("text/event-stream;q=abc", "text/event-stream")


@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"Application/Json; charset=UTF-8", b'application/json;charset="utf-8"'],
)
def test_content_type_tolerates_charset(content_type: bytes) -> None:
    assert _post(_with(BASE, b"content-type", content_type)).status == 200


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        b"text/plain",
        b"application/x-www-form-urlencoded",
        b"application/json; charset=latin-1",
    ],
)
def test_wrong_content_type_is_415(content_type: bytes | None) -> None:
    assert _post(_with(BASE, b"content-type", content_type)).status == 415


def test_body_limit_is_413_from_head_and_from_body() -> None:
    config = EndpointConfig(max_body_size=100)
    assert _post([*BASE, (b"content-length", b"101")], config=config).status == 413
    assert _post(BASE, body=INIT + b" " * 100, config=config).status == 413
    assert _post([*BASE, (b"content-length", b"abc")]).status == 400
    assert EndpointConfig().max_body_size == 4 * 1024 * 1024


def test_parse_errors_are_400() -> None:
    reply = _post(BASE, body=b"{nope")
    assert reply.status == 400
    assert body_json(reply)["error"]["code"] == PARSE_ERROR


def test_unsupported_protocol_version_header_is_400() -> None:
    """ "Protocol Version Header": invalid or unsupported -> 400."""
    reply = _post([*BASE, (b"mcp-protocol-version", b"1999-01-01")])
    assert reply.status == 400
    error = body_json(reply)["error"]
    assert error["code"] == UNSUPPORTED_PROTOCOL_VERSION
    assert error["data"]["requested"] == "1999-01-01"
    assert "2025-11-25" in error["data"]["supported"]


def test_missing_session_id_on_non_initialize_is_400() -> None:
    """ "Session Management": no Mcp-Session-Id (other than initialization) -> 400."""
    reply = _post(BASE, body=PING)
    assert reply.status == 400
    assert body_json(reply)["id"] == 1
    endpoint = make_endpoint()
    for method in ("GET", "DELETE"):
        headers = _with(BASE, b"accept", b"text/event-stream")
        action = endpoint.receive_request(method, headers, b"")
        assert isinstance(action, Reply)
        assert action.status == 400


def test_unknown_session_is_404_even_before_the_body() -> None:
    endpoint = make_endpoint()
    headers = [*BASE, (b"mcp-session-id", b"nope")]
    head = endpoint.check_request_head("POST", headers)
    assert head is not None
    assert head.status == 404
    action = endpoint.receive_request("POST", headers, PING)
    assert isinstance(action, Reply)
    assert action.status == 404


def test_duplicate_session_headers_are_400() -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    action = client.request("ping", extra=[(b"mcp-session-id", b"other")])
    assert isinstance(action, Reply)
    assert action.status == 400


def test_initialize_with_a_session_id_is_refused() -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    reply = client.initialize()
    assert reply.status == 400
    assert len(endpoint.sessions) == 1


def test_auth_hook_401_with_www_authenticate() -> None:
    def authenticate(headers: object) -> str | None:
        for name, value in headers:  # type: ignore[attr-defined]
            if name == b"authorization" and value == b"Bearer good":
                return "alice"
        return None

    config = EndpointConfig(
        authenticate=authenticate, www_authenticate='Bearer resource_metadata="x"'
    )
    reply = _post(BASE, config=config)
    assert reply.status == 401
    assert dict(reply.headers)[b"www-authenticate"] == b'Bearer resource_metadata="x"'
    assert _post([*BASE, (b"authorization", b"Bearer good")], config=config).status == 200


def test_check_order_security_before_content_negotiation() -> None:
    """A hostile Origin is refused as such, whatever else is wrong."""
    reply = _post([(b"host", b"localhost"), (b"origin", b"https://evil")], body=b"junk")
    assert reply.status == 403


def test_helpers_directly() -> None:
    assert host_allowed("[::1]", ["[::1]:*"])
    assert not host_allowed("localhost:abc", ["localhost:*"])
    assert not host_allowed("[::1", ["[::1]:*"])
    assert origin_allowed(None, [])
    assert not origin_allowed("http://localhost:80x", ["http://localhost:*"])


@pytest.mark.parametrize("long_first", [False, True])
def test_remembered_verdicts_match_fresh_ones_and_stay_bounded(long_first: bool) -> None:
    """The header verdicts are remembered, never at the cost of a wrong one or of memory.

    Each case is asked three ways (a tuple allow-list, which is remembered; a
    list, judged afresh; and again with the tuple, now from memory), and a
    value past ``MEMO_MAX_VALUE`` is never kept however often it is sent.
    """
    pad = " " * (MEMO_MAX_VALUE + 1) if long_first else ""
    hosts = ("localhost:*", "[::1]:8000")
    for host, verdict in [("localhost:9", True), ("[::1]:8000", True), ("evil:9", False)]:
        for allowed in (hosts, list(hosts), hosts):
            assert host_allowed(host, allowed) is verdict
    assert not host_allowed("localhost:" + "9" * (MEMO_MAX_VALUE + 1) + "x", hosts)
    origins = ("http://localhost:*",)
    for origin, verdict in [("http://localhost:80", True), ("http://localhost:8x", False)]:
        for allowed_origins in (origins, list(origins), origins):
            assert origin_allowed(origin, allowed_origins) is verdict
    for accept, verdict in [("text/*;q=0, */*", False), ("*/*", True)]:
        assert accepts(pad + accept, "text/event-stream") is verdict
        assert accepts(pad + accept, "text/event-stream") is verdict
    assert content_type_is_json(pad + "application/json; charset=utf-8")
    assert not content_type_is_json(pad + "application/json; charset=latin-1")
    before = _headers._accepts.cache_info().currsize
    for i in range(50):  # a new huge header per request: judged, not kept
        huge = "text/event-stream, " + "x" * (MEMO_MAX_VALUE + i)
        assert accepts(huge, "text/event-stream")
    assert _headers._accepts.cache_info().currsize == before
    for i in range(600):  # many distinct short ones: the memory stays at its bound
        assert not accepts(f"text/x{i}", "text/event-stream")
    assert _headers._accepts.cache_info().currsize <= 512
