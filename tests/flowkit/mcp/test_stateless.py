"""The stateless era (2026-07-28) served next to the handshake era on one endpoint.

Spec: 2026-07-28 "Streamable HTTP" ("Request Metadata", "Server Validation",
"Value Encoding", "Cancellation", "Backward Compatibility"), "Versioning"
("Protocol Version Negotiation", dual-era servers), "Discovery", "Caching",
"Logging" ("Per-request log level"); MCP-CHECKLIST section C.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from flowkit.mcp import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    UNSUPPORTED_PROTOCOL_VERSION,
    VERSIONS,
    Endpoint,
    EndpointConfig,
    Reply,
    StartCall,
    tool_result,
)

from ._client import Client, body_json, make_endpoint, sse_data

V = "2026-07-28"


def _meta(**extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    meta.update(extra)
    return meta


def _send(
    endpoint: Endpoint,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    headers: dict[bytes, bytes | None] | None = None,
    id: Any = 1,
) -> Any:
    params = {"_meta": _meta()} if params is None else params
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if id is not None:
        message["id"] = id
    base: dict[bytes, bytes | None] = {
        b"host": b"localhost:8000",
        b"accept": b"application/json, text/event-stream",
        b"content-type": b"application/json",
        b"mcp-protocol-version": V.encode(),
        b"mcp-method": method.encode(),
    }
    if method == "tools/call":
        base[b"mcp-name"] = str(params.get("name")).encode()
    base.update(headers or {})
    raw = [(k, v) for k, v in base.items() if v is not None]
    return endpoint.receive_request("POST", raw, orjson.dumps(message))


def _call(endpoint: Endpoint, name: str = "count", arguments: Any = None, **kw: Any) -> Any:
    meta = kw.pop("meta", _meta())
    params = {
        "name": name,
        "arguments": {"n": 2} if arguments is None else arguments,
        "_meta": meta,
    }
    return _send(endpoint, "tools/call", params, **kw)


def test_version_table_has_both_eras() -> None:
    assert not VERSIONS[V].sessions
    assert VERSIONS[V].disconnect_cancels
    assert VERSIONS["2025-11-25"].sessions
    assert not VERSIONS["2025-11-25"].disconnect_cancels


def test_server_discover() -> None:
    """ "Discovery": supported versions, capabilities, serverInfo in _meta; cacheable."""
    endpoint = make_endpoint(EndpointConfig(instructions="hi", cache_ttl_ms=5000))
    reply = _send(endpoint, "server/discover")
    assert isinstance(reply, Reply)
    assert reply.status == 200
    result = body_json(reply)["result"]
    assert result["resultType"] == "complete"
    assert result["supportedVersions"][0] == V
    assert "2025-11-25" in result["supportedVersions"]
    assert result["capabilities"]["tools"] == {"listChanged": False}
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "flowkit"
    assert result["instructions"] == "hi"
    assert (result["ttlMs"], result["cacheScope"]) == (5000, "public")
    assert len(endpoint.sessions) == 0


def test_tools_list_carries_result_type_and_cache_hints() -> None:
    """ "Caching": tools/list results carry ttlMs and cacheScope."""
    reply = _send(make_endpoint(EndpointConfig(cache_scope="private")), "tools/list")
    result = body_json(reply)["result"]
    assert [t["name"] for t in result["tools"]] == ["count", "add"]
    assert (result["resultType"], result["ttlMs"], result["cacheScope"]) == (
        "complete",
        0,
        "private",
    )


def test_no_sessions_and_session_id_is_ignored() -> None:
    """ "Backward Compatibility": ignore Mcp-Session-Id, do not mint or echo one."""
    endpoint = make_endpoint()
    reply = _send(endpoint, "tools/list", headers={b"mcp-session-id": b"stale-or-bogus"})
    assert isinstance(reply, Reply)
    assert reply.status == 200
    assert b"mcp-session-id" not in dict(reply.headers)
    assert len(endpoint.sessions) == 0


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_are_405(method: str) -> None:
    endpoint = make_endpoint()
    headers = [
        (b"host", b"localhost"),
        (b"accept", b"text/event-stream"),
        (b"mcp-protocol-version", V.encode()),
        (b"last-event-id", b"1:0"),
    ]
    reply = endpoint.receive_request(method, headers)
    assert isinstance(reply, Reply)
    assert reply.status == 405
    assert dict(reply.headers)[b"allow"] == b"POST"


def test_tools_call_is_stateless_and_disconnect_cancels() -> None:
    """ "Cancellation": closing the SSE response stream IS cancellation."""
    endpoint = make_endpoint()
    action = _call(endpoint, meta=_meta(progressToken="p"))
    assert isinstance(action, StartCall)
    assert action.session_id is None
    assert action.progress_token == "p"
    status, _, first = action.stream.open()
    assert status == 200
    assert first == b""  # no resumability: no priming event, no ids
    event = action.stream.progress(1)
    assert not event.startswith(b"id:")
    assert not action.stream.resumable  # closing it would be a cancel: never closed early
    assert endpoint.stream_finished(action.stream, disconnected=True) is True
    assert action.stream.cancelled
    assert action.stream.result(tool_result("late")) == b""  # nothing more, ever


def test_finished_stream_disconnect_is_nothing() -> None:
    endpoint = make_endpoint()
    action = _call(endpoint)
    action.stream.open()
    event = action.stream.result(tool_result("ok"))
    assert sse_data(event)["result"]["resultType"] == "complete"
    assert endpoint.stream_finished(action.stream, disconnected=True) is False


def test_logs_only_when_the_request_asks() -> None:
    """ "Per-request log level": no logLevel in _meta -> no notifications/message."""
    endpoint = make_endpoint()
    quiet = _call(endpoint)
    quiet.stream.open()
    assert quiet.stream.log("emergency", "x") is None
    chatty = _call(endpoint, meta=_meta(**{"io.modelcontextprotocol/logLevel": "warning"}))
    chatty.stream.open()
    assert chatty.stream.log("info", "x") is None
    assert chatty.stream.log("error", "x") is not None
    bad = _call(endpoint, meta=_meta(**{"io.modelcontextprotocol/logLevel": "loud"}))
    assert isinstance(bad, Reply)
    assert (bad.status, body_json(bad)["error"]["code"]) == (400, INVALID_PARAMS)


def test_invalid_arguments_result_has_result_type() -> None:
    reply = _call(make_endpoint(), arguments={"n": "x"})
    result = body_json(reply)["result"]
    assert result["isError"] is True
    assert result["resultType"] == "complete"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"_meta": 5},
        {"_meta": {"io.modelcontextprotocol/protocolVersion": V}},
        {"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}},
    ],
)
def test_missing_meta_is_400_invalid_params(params: dict[str, Any]) -> None:
    """C2: requests must carry protocolVersion and clientCapabilities in _meta."""
    reply = _send(make_endpoint(), "tools/list", params)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert body_json(reply)["error"]["code"] == INVALID_PARAMS
    assert body_json(reply)["id"] == 1


def test_unsupported_meta_version_is_32022_with_supported_list() -> None:
    """ "Protocol Version Negotiation": UnsupportedProtocolVersionError.

    Header and body agree on a revision we do not serve: the refusal lists
    what we do serve, echoes the request, and carries the request's id
    ("All error responses carry the request JSON-RPC id"), so the head check
    that runs before the body must let such a POST through.
    """
    endpoint = make_endpoint()
    meta = _meta(**{"io.modelcontextprotocol/protocolVersion": "1900-01-01"})
    headers = {b"mcp-protocol-version": b"1900-01-01"}
    head = [(b"host", b"localhost:8000"), (b"accept", b"*/*")]
    head.append((b"content-type", b"application/json"))
    assert (
        endpoint.check_request_head("POST", [*head, (b"mcp-protocol-version", b"1900-01-01")])
        is None
    )
    reply = _send(endpoint, "server/discover", {"_meta": meta}, headers=headers, id=301)
    assert reply.status == 400
    body = body_json(reply)
    assert body["id"] == 301
    error = body["error"]
    assert error["code"] == UNSUPPORTED_PROTOCOL_VERSION
    assert error["data"]["requested"] == "1900-01-01"
    assert V in error["data"]["supported"]


def test_served_header_over_unsupported_meta_version_is_a_mismatch() -> None:
    """ "Protocol Version Header": the header MUST match the _meta version;
    a header naming a served revision over another body version is -32020."""
    meta = _meta(**{"io.modelcontextprotocol/protocolVersion": "1900-01-01"})
    reply = _send(make_endpoint(), "server/discover", {"_meta": meta}, id=302)
    assert reply.status == 400
    assert body_json(reply)["error"]["code"] == HEADER_MISMATCH
    assert body_json(reply)["id"] == 302


def test_initialize_in_the_stateless_era_is_a_removed_method() -> None:
    """initialize with a 2026-07-28 MCP-Protocol-Version header: 404, -32601."""
    params = {"_meta": _meta(), "protocolVersion": V, "capabilities": {}}
    reply = _send(make_endpoint(), "initialize", params, id=500)
    assert reply.status == 404
    assert body_json(reply)["error"]["code"] == METHOD_NOT_FOUND
    assert body_json(reply)["id"] == 500


@pytest.mark.parametrize(
    "headers",
    [
        {b"mcp-protocol-version": None},
        {b"mcp-protocol-version": b"2025-11-25"},
        {b"mcp-method": None},
        {b"mcp-method": b"tools/call"},
        {b"mcp-method": b"TOOLS/LIST"},  # values are case-sensitive
    ],
)
def test_header_mismatch_is_32020(headers: dict[bytes, bytes | None]) -> None:
    """ "Server Validation": headers must be present and match the body."""
    reply = _send(make_endpoint(), "tools/list", headers=headers)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert body_json(reply)["error"]["code"] == HEADER_MISMATCH


@pytest.mark.parametrize(
    "name_header",
    [None, b"add", b"=?base64?!!!?=", b"=?base64?" + base64.b64encode(b"add") + b"?="],
)
def test_mcp_name_must_match(name_header: bytes | None) -> None:
    reply = _call(make_endpoint(), headers={b"mcp-name": name_header})
    assert isinstance(reply, Reply)
    assert (reply.status, body_json(reply)["error"]["code"]) == (400, HEADER_MISMATCH)


def test_mcp_name_base64_sentinel_is_decoded() -> None:
    """ "Value Encoding": decode =?base64?...?= before comparing."""
    encoded = b"=?base64?" + base64.b64encode(b"count") + b"?="
    assert isinstance(_call(make_endpoint(), headers={b"mcp-name": encoded}), StartCall)
    header_names_are_case_insensitive = _call(
        make_endpoint(), headers={b"mcp-name": None, b"MCP-NAME": b"count"}
    )
    assert isinstance(header_names_are_case_insensitive, StartCall)


def test_unknown_method_is_404_32601() -> None:
    """C5: unknown method -> 404 with -32601; ping/initialize-era methods included."""
    for method in ("tasks/list", "ping", "logging/setLevel"):
        reply = _send(make_endpoint(), method)
        assert isinstance(reply, Reply)
        assert (reply.status, body_json(reply)["error"]["code"]) == (404, METHOD_NOT_FOUND)


def test_unknown_tool_is_a_json_rpc_error() -> None:
    reply = _call(make_endpoint(), name="nope")
    assert body_json(reply)["error"]["code"] == INVALID_PARAMS


def test_notifications_202_and_responses_refused() -> None:
    endpoint = make_endpoint()
    assert _send(endpoint, "notifications/cancelled", {"requestId": 1}, id=None) == Reply(202)
    raw = [
        (b"host", b"localhost"),
        (b"accept", b"*/*"),
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", V.encode()),
    ]
    reply = endpoint.receive_request("POST", raw, b'{"jsonrpc":"2.0","id":1,"result":{}}')
    assert isinstance(reply, Reply)
    assert reply.status == 400


def test_modern_meta_without_header_is_routed_modern_then_refused() -> None:
    """Era routing by body: _meta version present, header missing -> -32020, not 400 session."""
    reply = _send(
        make_endpoint(), "tools/list", headers={b"mcp-protocol-version": None, b"mcp-method": None}
    )
    assert body_json(reply)["error"]["code"] == HEADER_MISMATCH


def test_both_eras_on_one_endpoint() -> None:
    """C8: initialize selects the handshake era for that session; modern requests stay stateless."""
    endpoint = make_endpoint()
    legacy = Client(endpoint)
    legacy.initialize()
    assert legacy.version == "2025-11-25"
    call = legacy.start()
    assert call.session_id == legacy.session_id
    assert call.stream.open()[2].startswith(b"id: ")
    modern = _call(endpoint)
    assert isinstance(modern, StartCall)
    assert modern.session_id is None
    assert len(endpoint.sessions) == 1
    # initialize asking for the modern revision falls back to our latest handshake revision.
    assert Client(endpoint, version=V).initialize().status == 200
    assert (
        body_json(Client(endpoint, version=V).initialize())["result"]["protocolVersion"]
        == "2025-11-25"
    )
