"""A ``progressToken`` is bounded in length (every progress event repeats it)."""

from __future__ import annotations

from typing import Any

import orjson

from flowkit.mcp import Reply, StartCall
from flowkit.mcp._stream import MAX_PROGRESS_TOKEN

from ._client import Client, body_json, make_endpoint


def test_a_token_over_the_limit_is_invalid_params_in_a_session() -> None:
    assert MAX_PROGRESS_TOKEN == 256
    client = Client(make_endpoint())
    client.initialize()
    assert isinstance(client.call("count", {"n": 1}, progress_token="t" * 256), StartCall)
    reply = client.call("count", {"n": 1}, progress_token="t" * 1_000_000)
    assert isinstance(reply, Reply)
    assert reply.status == 200
    error = body_json(reply)["error"]
    assert error["code"] == -32602
    assert "longer than 256 characters" in error["message"]
    assert len(reply.body) < 300  # the token is not echoed


def _stateless_call(token: Any) -> Reply | StartCall:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "progressToken": token,
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "count", "arguments": {"n": 1}, "_meta": meta},
    }
    headers = [
        (b"host", b"localhost:8000"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", b"2026-07-28"),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", b"count"),
    ]
    action = make_endpoint().receive_request("POST", headers, orjson.dumps(body))
    assert isinstance(action, Reply | StartCall)
    return action


def test_a_token_over_the_limit_is_invalid_params_in_the_stateless_era() -> None:
    assert isinstance(_stateless_call("t" * 256), StartCall)
    reply = _stateless_call("t" * 257)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert body_json(reply)["error"]["code"] == -32602
