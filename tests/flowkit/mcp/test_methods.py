"""Method handlers are plain functions in per-era tables, ``initialize`` included."""

from __future__ import annotations

import inspect

from flowkit.mcp import Endpoint, Reply
from flowkit.mcp._headers import parse_head
from flowkit.mcp._jsonrpc import Request
from flowkit.mcp._methods import (
    HANDSHAKE_METHODS,
    OPENS_SESSION,
    STATELESS_METHODS,
    RequestContext,
)
from flowkit.mcp._versions import VERSIONS

from ._client import body_json, make_endpoint


def test_endpoint_has_no_mixin_and_its_state_is_one_object() -> None:
    assert Endpoint.__mro__ == (Endpoint, object)
    endpoint = make_endpoint()
    assert endpoint.sessions is endpoint.state.sessions
    assert endpoint.config is endpoint.state.config


def test_every_handler_is_a_plain_function_of_state_and_context() -> None:
    assert set(HANDSHAKE_METHODS) >= OPENS_SESSION
    for table in (HANDSHAKE_METHODS, STATELESS_METHODS):
        for handler in table.values():
            assert inspect.isfunction(handler)
            assert list(inspect.signature(handler).parameters) == ["state", "ctx"]


def test_initialize_is_served_from_the_table_without_an_endpoint() -> None:
    endpoint = make_endpoint()
    request = Request(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
    head = parse_head("POST", [(b"host", b"localhost")])
    ctx = RequestContext(request, VERSIONS["2025-11-25"], None, None, head, "alice")
    reply = HANDSHAKE_METHODS["initialize"](endpoint.state, ctx)
    assert isinstance(reply, Reply)
    assert body_json(reply)["result"]["protocolVersion"] == "2025-06-18"
    session_id = dict(reply.headers)[b"mcp-session-id"].decode()
    assert endpoint.sessions.get(session_id, "alice") is not None
    assert endpoint.sessions.get(session_id, "mallory") is None
