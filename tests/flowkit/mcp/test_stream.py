"""A tool call's SSE stream: progress, logs, the one response, cancellation.

Spec: 2025-11-25 "Progress" ("Behavior Requirements"), "Cancellation",
"Logging", "Transports" -> "Sending Messages to the Server" (priming event,
``retry``), checklist A5, A6, B6, B10.
"""

from __future__ import annotations

import pytest

from flowkit.mcp import (
    Cancel,
    EndpointConfig,
    LocalProtocolError,
    OpenListenStream,
    Reply,
    StartCall,
    tool_result,
)
from flowkit.mcp._stream import STREAM_TRANSITIONS, StreamState

from ._client import Client, make_endpoint, sse_data


def _call(**kw: object) -> tuple[Client, StartCall]:
    endpoint = make_endpoint(kw.pop("config", None))  # type: ignore[arg-type]
    client = Client(endpoint)
    client.initialize()
    return client, client.start(**kw)  # type: ignore[arg-type]


def test_open_gives_sse_headers_and_priming_event() -> None:
    _, call = _call()
    status, headers, first = call.stream.open()
    assert status == 200
    assert dict(headers) == {
        b"content-type": b"text/event-stream",
        b"cache-control": b"no-cache, no-transform",
        b"x-accel-buffering": b"no",
    }
    assert first == b"id: 1:0\nretry: 1000\ndata: \n\n"
    assert call.stream.state is StreamState.ATTACHED


def test_progress_only_with_a_token_and_strictly_increasing() -> None:
    """ "Progress": only for requests with a progressToken; progress MUST increase."""
    _, call = _call(progress_token="tok")
    call.stream.open()
    event = call.stream.progress(1, total=10, message="one")
    assert sse_data(event) == {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": "tok", "progress": 1, "total": 10, "message": "one"},
    }
    assert sse_data(call.stream.progress(1.5))["params"] == {
        "progressToken": "tok",
        "progress": 1.5,
    }
    for bad in (1.5, 1, 0, -1):
        with pytest.raises(LocalProtocolError):
            call.stream.progress(bad)
    for junk in (float("nan"), float("inf"), True, "2"):
        with pytest.raises(LocalProtocolError):
            call.stream.progress(junk)  # type: ignore[arg-type]
    _, quiet = _call()
    quiet.stream.open()
    assert quiet.stream.progress(1) == b""  # no token: nothing to send
    with pytest.raises(LocalProtocolError):
        quiet.stream.progress(1)  # the rule holds regardless


def test_exactly_one_response_then_nothing() -> None:
    """ "Progress": notifications MUST stop after completion; one response ends the stream."""
    _, call = _call(progress_token=1)
    call.stream.open()
    event = call.stream.result(tool_result("ok"))
    assert sse_data(event) == {
        "jsonrpc": "2.0",
        "id": call.request_id,
        "result": {"content": [{"type": "text", "text": "ok"}]},
    }
    assert call.stream.finished
    for emit in (
        lambda: call.stream.progress(5),
        lambda: call.stream.log("error", "x"),
        lambda: call.stream.result(tool_result("again")),
        lambda: call.stream.error(-32603, "x"),
        lambda: call.stream.notify("n"),
        lambda: call.stream.open(),
    ):
        with pytest.raises(LocalProtocolError):
            emit()
    assert call.stream.keepalive() == b""  # the final message is on its way: none due


def test_nothing_before_open() -> None:
    _, call = _call()
    with pytest.raises(LocalProtocolError):
        call.stream.result(tool_result("early"))


def test_error_response() -> None:
    _, call = _call()
    call.stream.open()
    event = call.stream.error(-32603, "boom", {"k": 1})
    assert sse_data(event)["error"] == {"code": -32603, "message": "boom", "data": {"k": 1}}


def test_output_schema_is_enforced() -> None:
    """ "Output Schema": servers MUST provide structured results that conform."""
    client, call = _call(name="add", arguments={"a": 1, "b": 2})
    call.stream.open()
    with pytest.raises(LocalProtocolError):
        call.stream.result(tool_result("3"))  # missing structuredContent
    with pytest.raises(LocalProtocolError):
        call.stream.result(tool_result(structured={"sum": "three"}))
    assert call.stream.result(tool_result(structured={"sum": 3}))
    other = client.start("add", {"a": 1, "b": 2})
    other.stream.open()
    assert other.stream.result(tool_result("failed", is_error=True))  # errors need no structure


def test_unserialisable_result_is_our_bug() -> None:
    _, call = _call()
    call.stream.open()
    with pytest.raises(LocalProtocolError):
        call.stream.result({"content": [], "x": object()})


def test_keepalive_is_a_comment() -> None:
    _, call = _call()
    call.stream.open()
    assert call.stream.keepalive() == b":\n\n"


def test_log_notifications() -> None:
    """ "Log Message Notifications": level, optional logger, data."""
    _, call = _call()
    call.stream.open()
    event = call.stream.log("warning", {"x": 1}, logger="db")
    assert event is not None
    assert sse_data(event) == {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "warning", "data": {"x": 1}, "logger": "db"},
    }
    with pytest.raises(LocalProtocolError):
        call.stream.log("loud", "x")


def test_cancel_suppresses_the_response() -> None:
    """ "Cancellation": receivers SHOULD NOT send a response for a cancelled request."""
    client, call = _call(id="c1", progress_token="t")
    call.stream.open()
    action = client.notify("notifications/cancelled", {"requestId": "c1", "reason": "user"})
    assert isinstance(action, Cancel)
    assert action.reply == Reply(202)
    assert (action.session_id, action.request_id, action.stream) == (
        client.session_id,
        "c1",
        call.stream,
    )
    assert call.stream.cancelled
    assert call.stream.result(tool_result("late")) == b""
    assert call.stream.error(-32603, "late") == b""
    assert call.stream.progress(1) == b""
    assert call.stream.log("emergency", "x") is None
    assert call.stream.keepalive() == b""
    # The request is no longer in flight: a second cancel is ignored.
    assert client.notify("notifications/cancelled", {"requestId": "c1"}) == Reply(202)


def test_cancel_before_open() -> None:
    client, call = _call(id=4)
    assert isinstance(client.notify("notifications/cancelled", {"requestId": 4}), Cancel)
    assert call.stream.open()[2] == b""
    assert call.stream.result(tool_result("x")) == b""


@pytest.mark.parametrize(
    "params", [{"requestId": 999}, {"requestId": "1"}, {}, {"requestId": None}, {"requestId": [1]}]
)
def test_unknown_or_malformed_cancel_is_ignored(params: dict[str, object]) -> None:
    """ "Error Handling" (cancellation): unknown ids and malformed notifications are ignored."""
    client, call = _call(id=1)
    assert client.notify("notifications/cancelled", params) == Reply(202)
    assert not call.stream.cancelled


def test_cancel_after_completion_is_ignored() -> None:
    client, call = _call(id=1)
    call.stream.open()
    call.stream.result(tool_result("done"))
    assert client.notify("notifications/cancelled", {"requestId": 1}) == Reply(202)
    assert call.stream.state is StreamState.DONE


def test_disconnect_is_not_cancel_in_the_handshake_era() -> None:
    """ "Sending Messages": disconnection SHOULD NOT be interpreted as cancellation."""
    client, call = _call()
    call.stream.open()
    assert client.endpoint.stream_finished(call.stream, disconnected=True) is False
    assert not call.stream.cancelled
    assert call.stream.progress(1) == b""  # no token; still allowed
    assert call.stream.result(tool_result("ok"))


def test_stream_transition_table_never_leaves_terminal_states() -> None:
    for (state, _), after in STREAM_TRANSITIONS.items():
        if state is StreamState.CANCELLED:
            assert after is StreamState.CANCELLED
        if state is StreamState.DONE:
            assert after is StreamState.DONE


def test_listen_stream_one_per_session() -> None:
    """ "Listening for Messages from the Server"; a second concurrent GET -> 409."""
    client, _ = _call()
    listen = client.get()
    assert isinstance(listen, OpenListenStream)
    assert listen.session_id == client.session_id
    status, _, first = listen.stream.open()
    assert status == 200
    assert first.startswith(b"id: ")
    second = client.get()
    assert isinstance(second, Reply)
    assert second.status == 409
    event = listen.stream.notify("notifications/tools/list_changed")
    assert sse_data(event) == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    # "The server MUST NOT send a JSON-RPC response on the stream."
    with pytest.raises(LocalProtocolError):
        listen.stream.result(tool_result("x"))
    with pytest.raises(LocalProtocolError):
        listen.stream.progress(1)
    assert client.endpoint.stream_finished(listen.stream) is False
    assert isinstance(client.get(), OpenListenStream)


def test_get_needs_event_stream_accept() -> None:
    client, _ = _call()
    reply = client.get(accept=b"application/json")
    assert isinstance(reply, Reply)
    assert reply.status == 406
    assert isinstance(client.get(accept=b"*/*"), OpenListenStream)


def test_no_retry_field_when_disabled() -> None:
    _, call = _call(config=EndpointConfig(sse_retry_ms=None))
    assert call.stream.open()[2] == b"id: 1:0\ndata: \n\n"


def test_a_call_stream_with_an_event_store_is_resumable() -> None:
    """SSE polling (SEP-1699): the server may end such a response early; the client resumes."""
    client, call = _call()
    assert call.stream.resumable
    listen = client.get()
    assert isinstance(listen, OpenListenStream)
    assert not listen.stream.resumable  # a GET stream never answers a request
