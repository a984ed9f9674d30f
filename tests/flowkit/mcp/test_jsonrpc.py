"""JSON-RPC framing ("Sending Messages to the Server", 2025-11-25 transports)."""

from __future__ import annotations

import orjson
import pytest

from flowkit import FlowkitError
from flowkit.mcp import (
    INVALID_REQUEST,
    PARSE_ERROR,
    LocalProtocolError,
    Notification,
    ProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    encode_error,
    encode_notification,
    encode_result,
    parse_message,
)
from flowkit.mcp._actions import error_reply


def test_error_tree() -> None:
    assert issubclass(ProtocolError, FlowkitError)
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError)


def test_parse_request_notification_response() -> None:
    assert parse_message(b'{"jsonrpc":"2.0","id":1,"method":"ping"}') == Request(1, "ping", {})
    assert parse_message(b'{"jsonrpc":"2.0","id":"a","method":"m","params":{"x":1}}') == Request(
        "a", "m", {"x": 1}
    )
    assert parse_message(b'{"jsonrpc":"2.0","method":"n"}') == Notification("n", {})
    assert parse_message(b'{"jsonrpc":"2.0","id":1,"result":{}}') == Response(1, {}, None)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"\xff\xfe", b'"\xed\xa0\x80"', b'{"a": "\\ud800"}', b"[" * 5000, b"nul"],
)
def test_unparseable_is_parse_error_400(body: bytes) -> None:
    """Unparseable JSON or invalid UTF-8 -> 400 with -32700."""
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(body)
    assert (info.value.http_status, info.value.code) == (400, PARSE_ERROR)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]',  # batches removed in 2025-06-18
        b"[]",
        b"1",
        b'"x"',
        b'{"id":1,"method":"ping"}',
        b'{"jsonrpc":"1.0","id":1,"method":"ping"}',
        b'{"jsonrpc":"2.0","id":1,"method":5}',
        b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}',
        b'{"jsonrpc":"2.0","id":true,"method":"ping"}',
        b'{"jsonrpc":"2.0","id":null,"method":"ping"}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}',
        b'{"jsonrpc":"2.0","id":1}',
    ],
)
def test_not_a_single_message_is_invalid_request_400(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(body)
    assert (info.value.http_status, info.value.code) == (400, INVALID_REQUEST)


def test_invalid_request_keeps_a_readable_id() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(b'{"jsonrpc":"1.0","id":7,"method":"ping"}')
    assert info.value.request_id == 7


def test_encoders() -> None:
    assert orjson.loads(encode_result(1, {})) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert orjson.loads(encode_notification("n")) == {"jsonrpc": "2.0", "method": "n"}
    # No id: the member is omitted ("error response that has no id").
    assert orjson.loads(encode_error(None, -1, "m")) == {
        "jsonrpc": "2.0",
        "error": {"code": -1, "message": "m"},
    }
    assert orjson.loads(encode_error("x", -1, "m", {"d": 1}))["error"]["data"] == {"d": 1}


def test_error_reply_carries_status_headers_and_json_body() -> None:
    exc = RemoteProtocolError("no", http_status=405, code=-32000, headers=[(b"allow", b"POST")])
    reply = error_reply(exc)
    assert reply.status == 405
    assert (b"allow", b"POST") in reply.headers
    assert (b"content-type", b"application/json") in reply.headers
    assert orjson.loads(reply.body)["error"] == {"code": -32000, "message": "no"}
    assert reply.error is exc
