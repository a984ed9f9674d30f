"""``Mcp-Param-*`` headers mirroring ``x-mcp-header`` tool arguments (2026-07-28).

Spec: 2026-07-28 Streamable HTTP, "Custom Headers from Tool Parameters"
("Schema Extension", "Value Encoding", "Server Behavior for Custom Headers",
"Server Validation"): a value in the body needs its header, the header must
match it after strict Base64-sentinel decoding, integers compare numerically,
and every refusal is 400 with -32020 (HeaderMismatch).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from flowkit.mcp import HEADER_MISMATCH, LocalProtocolError, Reply, StartCall, Tool, ToolSet

from ._client import body_json, make_endpoint

V = "2026-07-28"
SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "limit": {"type": "integer", "x-mcp-header": "Limit"},
        "dry": {"type": "boolean", "x-mcp-header": "Dry"},
        "query": {"type": "string"},
    },
}


def _endpoint() -> Any:
    tools = ToolSet([Tool(name="q", description="d", input_schema=SCHEMA, fn=print)])
    return make_endpoint(tools=tools)


def _call(arguments: dict[str, Any], **params: str) -> Any:
    headers = [
        (b"host", b"localhost:8000"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", V.encode()),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", b"q"),
    ]
    headers += [(f"Mcp-Param-{k}".encode(), v.encode("latin-1")) for k, v in params.items()]
    meta = {
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    message = {
        "jsonrpc": "2.0",
        "id": 9,
        "method": "tools/call",
        "params": {"name": "q", "arguments": arguments, "_meta": meta},
    }
    return _endpoint().receive_request("POST", headers, orjson.dumps(message))


def _b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.mark.parametrize(
    ("arguments", "headers"),
    [
        ({"query": "x"}, {}),  # nothing mirrored: no header expected
        ({"region": "us-west1"}, {"Region": "us-west1"}),
        ({"region": "Hello, 世界"}, {"Region": _b64("Hello, 世界")}),
        ({"region": "=?base64?SGVsbG8="}, {"Region": "=?base64?SGVsbG8="}),  # literal
        ({"limit": 42}, {"Limit": "42"}),
        ({"limit": 42}, {"Limit": "42.0"}),  # compared numerically
        ({"dry": False}, {"Dry": "false"}),
    ],
)
def test_matching_headers_are_accepted(arguments: dict[str, Any], headers: dict[str, str]) -> None:
    assert isinstance(_call(arguments, **headers), StartCall)


def test_null_needs_no_header() -> None:
    """ "Parameter value is null: Server MUST NOT expect the header"."""
    reply = _call({"region": None})  # the input schema, not the headers, refuses null
    assert isinstance(reply, Reply)
    assert reply.status == 200
    assert body_json(reply)["result"]["isError"] is True


@pytest.mark.parametrize(
    ("arguments", "headers"),
    [
        ({"region": "us-west1"}, {}),  # value in the body, header omitted
        ({"region": "us-west1"}, {"Region": "eu-west1"}),
        ({"region": "Hello"}, {"Region": "=?base64?SGVsbG8?="}),  # bad padding
        ({"region": "Hello"}, {"Region": "=?base64?SGVs!!!bG8=?="}),  # not the alphabet
        ({"region": "é"}, {"Region": "é"}),  # not header-safe: must be encoded
        ({}, {"Region": "us-west1"}),  # header without a value
        ({"limit": 42}, {"Limit": "41"}),
        ({"dry": True}, {"Dry": "True"}),  # values are case-sensitive
    ],
)
def test_mismatches_are_400_32020(arguments: dict[str, Any], headers: dict[str, str]) -> None:
    reply = _call(arguments, **headers)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert body_json(reply)["error"]["code"] == HEADER_MISMATCH
    assert body_json(reply)["id"] == 9


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "number", "x-mcp-header": "A"}}},
        {"type": "object", "properties": {"a": {"type": ["string"], "x-mcp-header": "A"}}},
        {"type": "object", "properties": {"a": {"type": "string", "x-mcp-header": ""}}},
        {"type": "object", "properties": {"a": {"type": "string", "x-mcp-header": "A:B"}}},
        {
            "type": "object",
            "properties": {
                "a": {"type": "string", "x-mcp-header": "Same"},
                "b": {"type": "string", "x-mcp-header": "same"},
            },
        },
        {
            "type": "object",
            "properties": {
                "a": {"type": "array", "items": {"type": "string", "x-mcp-header": "A"}}
            },
        },
        {
            "type": "object",
            "anyOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}],
        },
    ],
)
def test_invalid_annotations_are_refused_at_declaration(schema: dict[str, Any]) -> None:
    """ "Schema Extension": a tool with an invalid x-mcp-header is invalid."""
    with pytest.raises(LocalProtocolError):
        Tool(name="t", description="d", input_schema=schema, fn=print)


def test_nested_properties_are_reachable() -> None:
    schema = {
        "type": "object",
        "properties": {
            "target": {
                "type": "object",
                "properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}},
            }
        },
    }
    [param] = Tool(name="t", description="d", input_schema=schema, fn=print).header_params
    assert (param.header, param.path, param.type) == (
        "mcp-param-zone",
        ("target", "zone"),
        "string",
    )
