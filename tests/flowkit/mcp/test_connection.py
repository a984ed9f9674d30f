"""``Endpoint.receive_message``: the core on a channel without HTTP (stdio).

The binding has no header layer and one shared channel (2026-07-28
``transports/stdio``): the connection is the session, a stateless-era
request is recognised and validated from its body alone, messages are lines
(no SSE framing, ids or keepalives), and ``notifications/cancelled`` cancels
in both eras.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from flowkit.mcp import (
    Cancel,
    Connection,
    Endpoint,
    EndpointConfig,
    OpenListenStream,
    Reply,
    StartCall,
    ToolSet,
)

MODERN = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def _endpoint(**config: Any) -> Endpoint:
    tools = ToolSet()

    @tools.tool
    async def count(n: int):  # type: ignore[no-untyped-def]
        """Count to n."""
        yield n

    return Endpoint(EndpointConfig(**config), tools, clock=lambda: 0.0)


def _send(endpoint: Endpoint, connection: Connection, message: dict[str, Any]) -> Any:
    return endpoint.receive_message(orjson.dumps(message), connection)


def _body(reply: Any) -> dict[str, Any]:
    assert isinstance(reply, Reply)
    body = orjson.loads(reply.body)
    assert isinstance(body, dict)
    return body


def _initialized(endpoint: Endpoint) -> Connection:
    connection = endpoint.open_connection()
    reply = _send(
        endpoint,
        connection,
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
    )
    assert _body(reply)["result"]["protocolVersion"] == "2025-11-25"
    assert connection.session_id is not None
    assert (
        _send(endpoint, connection, {"jsonrpc": "2.0", "method": "notifications/initialized"}).body
        == b""
    )
    return connection


def _call(request_id: Any, token: Any = "t", meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {
            "name": "count",
            "arguments": {"n": 1},
            "_meta": {**(meta or {}), "progressToken": token},
        },
    }


def test_handshake_call_streams_lines_without_sse_framing_ids_or_keepalives() -> None:
    endpoint = _endpoint()
    connection = _initialized(endpoint)
    action = _send(endpoint, connection, _call(1))
    assert isinstance(action, StartCall)
    stream = action.stream
    assert stream.open()[2] == b""  # no priming event: nothing to resume on one channel
    progress = stream.progress(1, total=1)
    assert progress.endswith(b"\n")
    assert progress.count(b"\n") == 1
    assert orjson.loads(progress)["params"] == {"progressToken": "t", "progress": 1, "total": 1}
    assert stream.keepalive() == b""
    assert not stream.resumable
    final = stream.complete({"content": []})
    assert orjson.loads(final)["id"] == 1
    assert final.count(b"\n") == 1
    assert endpoint.event_store.replay_after(connection.session_id, _event(stream)) is None  # type: ignore[arg-type]


def _event(stream: Any) -> Any:
    from flowkit.mcp import EventId

    return EventId(stream.stream_id, 0)


def test_handshake_cancel_by_notification() -> None:
    endpoint = _endpoint()
    connection = _initialized(endpoint)
    action = _send(endpoint, connection, _call(1))
    cancel = _send(
        endpoint,
        connection,
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
    )
    assert isinstance(cancel, Cancel)
    assert cancel.stream is action.stream
    assert action.stream.progress(1) == b""


def test_stateless_request_is_served_from_the_body_alone() -> None:
    endpoint = _endpoint()
    connection = endpoint.open_connection()
    # No MCP-Protocol-Version / Mcp-Method / Mcp-Name: nothing is mirrored on stdio.
    action = _send(endpoint, connection, _call(1, meta=MODERN))
    assert isinstance(action, StartCall)
    assert action.session_id is None
    action.stream.open()
    final = action.stream.complete({"content": []})
    assert orjson.loads(final)["result"]["resultType"] == "complete"
    assert final.endswith(b"}\n")
    assert connection.session_id is None


def test_stateless_cancel_by_notification_and_ids_unique_while_in_flight() -> None:
    endpoint = _endpoint()
    connection = endpoint.open_connection()
    action = _send(endpoint, connection, _call(1, meta=MODERN))
    again = _send(endpoint, connection, _call(1, meta=MODERN))
    assert _body(again)["error"]["code"] == -32600
    cancel = _send(
        endpoint,
        connection,
        {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": 1, "_meta": MODERN},
        },
    )
    assert isinstance(cancel, Cancel)
    assert cancel.stream is action.stream
    assert action.stream.cancelled
    # Finished: the id is free again, and a late cancel is ignored.
    assert isinstance(_send(endpoint, connection, _call(1, meta=MODERN)), StartCall)


def test_finished_stateless_calls_do_not_accumulate() -> None:
    endpoint = _endpoint()
    connection = endpoint.open_connection()
    for i in range(1000):
        action = _send(endpoint, connection, _call(i, meta=MODERN))
        action.stream.open()
        action.stream.complete({"content": []})
    assert len(connection.calls) <= 128


def test_listen_is_cancelled_by_notification() -> None:
    endpoint = _endpoint(tools_list_changed=True)
    connection = endpoint.open_connection()
    action = _send(
        endpoint,
        connection,
        {
            "jsonrpc": "2.0",
            "id": "l",
            "method": "subscriptions/listen",
            "params": {"_meta": MODERN, "notifications": {"toolsListChanged": True}},
        },
    )
    assert isinstance(action, OpenListenStream)
    ack = action.stream.open()[2]
    assert orjson.loads(ack)["method"] == "notifications/subscriptions/acknowledged"
    cancel = _send(
        endpoint,
        connection,
        {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": "l", "_meta": MODERN},
        },
    )
    assert isinstance(cancel, Cancel)


def test_before_initialize_requests_are_refused_and_notifications_unanswered() -> None:
    endpoint = _endpoint()
    connection = endpoint.open_connection()
    refused = _body(
        _send(endpoint, connection, {"jsonrpc": "2.0", "id": 4, "method": "tools/list"})
    )
    assert refused["id"] == 4
    assert refused["error"]["code"] == -32600
    quiet = _send(
        endpoint,
        connection,
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4}},
    )
    assert quiet == Reply(202)


def test_second_initialize_is_refused() -> None:
    endpoint = _endpoint()
    connection = _initialized(endpoint)
    session = connection.session_id
    again = _body(
        _send(
            endpoint,
            connection,
            {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "initialize",
                "params": {"protocolVersion": "2025-11-25"},
            },
        )
    )
    assert again["error"]["code"] == -32600
    assert connection.session_id == session
    assert len(endpoint.sessions) == 1


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{", -32700),
        (b"\xff", -32700),
        (b"[]", -32600),
        (b'{"jsonrpc":"2.0","id":{},"method":"x"}', -32600),
    ],
)
def test_malformed_messages_get_json_rpc_errors(data: bytes, code: int) -> None:
    endpoint = _endpoint()
    reply = endpoint.receive_message(data, endpoint.open_connection())
    assert _body(reply)["error"]["code"] == code


def test_oversized_message_is_refused_from_its_length() -> None:
    endpoint = _endpoint(max_body_size=100)
    reply = endpoint.receive_message(b"x" * 101, endpoint.open_connection())
    assert _body(reply)["error"]["message"] == "Payload Too Large: the limit is 100 bytes"


def test_the_channel_carries_the_session_notifications() -> None:
    endpoint = _endpoint(tools_list_changed=True)
    connection = _initialized(endpoint)
    listen = connection.listen
    assert listen is not None
    assert listen.open()[2] == b""
    assert endpoint.sessions.get_any(connection.session_id).busy  # type: ignore[union-attr]
    changed = endpoint.list_changed()
    assert [stream for stream, _ in changed] == [listen]
    assert changed[0][1] == b'{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n'
