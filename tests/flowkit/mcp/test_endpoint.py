"""Hypothesis: the endpoint never crashes on peer input, and sessions obey the table.

(a) Arbitrary bodies, JSON values and header sets only ever produce an Action;
    every refusal is a documented (status, JSON-RPC code) pair.
(b) Random sequences of initialize / call / progress / cancel / finish /
    disconnect / resume / delete / expire against a model of the session
    table ("Session Management", "Cancellation", "Resumability and Redelivery").
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from flowkit.mcp import (
    Cancel,
    EndpointConfig,
    OpenListenStream,
    Reply,
    Resume,
    StartCall,
    tool_result,
)
from flowkit.mcp._stream import StreamState

from ..._budget import examples
from ._client import Client, FakeClock, make_endpoint

CARRIED = (StreamState.ATTACHED, StreamState.CLOSING)

# What each refusal status may carry (docs/mcp.md, "Status codes").
DOCUMENTED: dict[int, set[int]] = {
    200: {-32600, -32601, -32602, -32002, -32603},
    400: {-32700, -32600, -32602, -32000, -32020, -32022},
    401: {-32000},
    403: {-32000},
    404: {-32000, -32601},
    405: {-32000},
    406: {-32000},
    409: {-32000},
    413: {-32000},
    415: {-32000},
    503: {-32000},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
methods = st.sampled_from(
    [
        "server/discover",
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "logging/setLevel",
        "notifications/cancelled",
        "notifications/initialized",
        "resources/list",
        "",
    ]
)
messages = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0"])},
    optional={
        "id": st.one_of(
            st.integers(-(2**70), 2**70), st.text(max_size=5), st.none(), st.booleans(), st.floats()
        ),
        "method": methods | st.text(max_size=5),
        "params": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.sampled_from(["count", "add", "nope"]) | json_values,
                    "arguments": json_values | st.fixed_dictionaries({"n": json_values}),
                    "protocolVersion": st.sampled_from(["2025-11-25", "2025-03-26", "x"])
                    | json_values,
                    "cursor": json_values,
                    "level": st.sampled_from(["info", "bad"]) | json_values,
                    "requestId": json_values,
                    "_meta": json_values
                    | st.fixed_dictionaries(
                        {},
                        optional={
                            "progressToken": json_values,
                            "io.modelcontextprotocol/protocolVersion": st.sampled_from(
                                ["2026-07-28", "2025-11-25"]
                            )
                            | json_values,
                            "io.modelcontextprotocol/clientCapabilities": json_values,
                            "io.modelcontextprotocol/logLevel": st.sampled_from(["debug", "x"]),
                        },
                    ),
                },
            ),
        ),
        "result": json_values,
        "error": json_values,
    },
)


def _dumps(value: Any) -> bytes:
    # The stdlib encoder, unlike orjson, writes huge ints and NaN: good fuzz.
    return json.dumps(value).encode()


bodies = st.one_of(st.binary(max_size=64), messages.map(_dumps), json_values.map(_dumps))
header_names = st.sampled_from(
    [
        b"host",
        b"origin",
        b"accept",
        b"content-type",
        b"content-length",
        b"mcp-session-id",
        b"mcp-protocol-version",
        b"last-event-id",
        b"x-other",
        b"Accept",
        b"HOST",
        b"mcp-method",
        b"mcp-name",
    ]
)
header_values = st.one_of(
    st.sampled_from(
        [
            b"localhost:8000",
            b"evil.com",
            b"application/json",
            b"text/event-stream",
            b"*/*",
            b"application/json, text/event-stream",
            b"session-1",
            b"2025-11-25",
            b"1:0",
            b"12",
            b"99999999999",
            b"2026-07-28",
            b"tools/call",
            b"tools/list",
            b"count",
            b"=?base64?Y291bnQ=?=",
            b"=?base64?@@?=",
            b"http://localhost:1",
            b"",
            b"\xff\xfe",
            b"q=;;,,/",
        ]
    ),
    st.binary(max_size=16),
)
header_sets = st.lists(st.tuples(header_names, header_values), max_size=8)


def _check(action: Any) -> None:
    assert isinstance(action, Reply | StartCall | Cancel | OpenListenStream | Resume)
    if isinstance(action, Reply) and action.body:
        body = orjson.loads(action.body)
        if "error" in body:
            assert action.status in DOCUMENTED, action
            assert body["error"]["code"] in DOCUMENTED[action.status], (action, body)
        else:
            assert action.status == 200
    elif isinstance(action, Reply):
        assert action.status in (200, 202)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["POST", "GET", "DELETE", "PUT", "post"]),
    headers=header_sets,
    body=bodies,
    with_session=st.booleans(),
)
def test_arbitrary_requests_only_produce_documented_actions(
    method: str, headers: list[tuple[bytes, bytes]], body: bytes, with_session: bool
) -> None:
    endpoint = make_endpoint()
    if with_session:
        client = Client(endpoint)
        client.initialize()
        headers = client.headers(headers)
    head = endpoint.check_request_head(method, headers)
    action = endpoint.receive_request(method, headers, body)
    _check(action)
    if head is not None:
        assert isinstance(action, Reply)
        assert action.status == head.status


@settings(max_examples=examples(200), deadline=None)
@given(body=bodies)
def test_well_formed_heads_with_arbitrary_bodies(body: bytes) -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    sessions = len(endpoint.sessions)
    _check(client.post(body))
    anonymous = Client(endpoint)
    action = anonymous.post(body)
    _check(action)
    if len(endpoint.sessions) > sessions:
        # Only a successful initialize creates a session.
        assert isinstance(action, Reply)
        assert action.status == 200
        assert any(name == b"mcp-session-id" for name, _ in action.headers)


mcp_headers = st.lists(
    st.tuples(
        st.sampled_from([b"mcp-protocol-version", b"mcp-method", b"mcp-name", b"mcp-session-id"]),
        header_values,
    ),
    max_size=4,
)


@settings(max_examples=examples(200), deadline=None)
@given(extra=mcp_headers, body=bodies, modern=st.booleans())
def test_sound_transport_headers_with_arbitrary_mcp_headers_and_bodies(
    extra: list[tuple[bytes, bytes]], body: bytes, modern: bool
) -> None:
    """Past the security and content checks, both eras' validation is exercised."""
    endpoint = make_endpoint()
    headers = [
        (b"host", b"localhost"),
        (b"accept", b"*/*"),
        (b"content-type", b"application/json"),
    ]
    if modern:
        headers.append((b"mcp-protocol-version", b"2026-07-28"))
    action = endpoint.receive_request("POST", headers + extra, body)
    _check(action)
    if isinstance(action, StartCall) and action.session_id is None:
        # Stateless calls: a disconnect cancels and then nothing is answered.
        assert endpoint.stream_finished(action.stream, disconnected=True)
        assert action.stream.result(tool_result("late")) == b""


class SessionMachine(RuleBasedStateMachine):
    """Model: which sessions live, which calls are in flight, what each stream sent."""

    clients = Bundle("clients")
    calls = Bundle("calls")

    @initialize()
    def setup(self) -> None:
        self.clock = FakeClock()
        self.endpoint = make_endpoint(
            EndpointConfig(max_sessions=3, session_idle_timeout=100), clock=self.clock
        )
        self.live: set[str] = set()
        self.events: dict[int, list[bytes]] = {}  # id(stream) -> events it produced
        self.next_id = 0

    @rule(target=clients)
    def new_client(self) -> Client:
        client = Client(self.endpoint)
        reply = client.initialize()
        if reply.status == 200:
            assert client.session_id is not None
            self.live.add(client.session_id)
        else:
            assert reply.status == 503
            assert dict(reply.headers)[b"retry-after"].isdigit()
        return client

    @rule(target=calls, client=clients, token=st.booleans())
    def call(self, client: Client, token: bool) -> Any:
        self.next_id += 1
        action = client.call(
            "count", {"n": 2}, id=self.next_id, progress_token=1 if token else None
        )
        if client.session_id not in self.live:
            assert isinstance(action, Reply)
            assert action.status in (400, 404)
            return (client, None)
        assert isinstance(action, StartCall)
        self.events[id(action.stream)] = [action.stream.open()[2]]
        return (client, action)

    @rule(call=calls, step=st.floats(0.5, 10))
    def progress(self, call: Any, step: float) -> None:
        _, action = call
        if action is None or action.stream.finished:
            return
        stream = action.stream
        value = (stream._progress or 0) + step
        event = stream.progress(value)
        if event:
            self.events[id(stream)].append(event)

    @rule(call=consumes(calls))
    def finish(self, call: Any) -> None:
        _, action = call
        if action is None or action.stream.finished:
            return
        event = action.stream.result(tool_result("ok"))
        assert event
        self.events[id(action.stream)].append(event)

    @rule(call=calls)
    def cancel(self, call: Any) -> None:
        client, action = call
        if action is None:
            return
        was_running = not action.stream.finished and client.session_id in self.live
        reply = client.notify("notifications/cancelled", {"requestId": action.request_id})
        if client.session_id not in self.live:
            assert isinstance(reply, Reply)
            assert reply.status == 404
            return
        if was_running:
            assert isinstance(reply, Cancel)
        else:
            assert reply == Reply(202)
        assert action.stream.finished
        if action.stream.cancelled:  # a cancelled request is never answered
            assert action.stream.result(tool_result("late")) == b""

    @rule(call=calls)
    def disconnect(self, call: Any) -> None:
        _, action = call
        # Only a response that carries the stream can end (one end per start).
        if action is not None and action.stream.state in CARRIED:
            assert self.endpoint.stream_finished(action.stream, disconnected=True) is False

    @rule(call=calls, back=st.integers(0, 3))
    def resume(self, call: Any, back: int) -> None:
        client, action = call
        if action is None:
            return
        sent = self.events[id(action.stream)]
        index = max(0, len(sent) - 1 - back)
        last_id = sent[index].split(b"\n", 1)[0].removeprefix(b"id: ")
        result = client.get(last_event_id=last_id)
        if client.session_id not in self.live:
            assert isinstance(result, Reply)
            assert result.status == 404
            return
        if isinstance(result, Reply):
            assert result.status == 409  # still attached to its POST response
            assert action.stream.state is StreamState.ATTACHED
            return
        assert isinstance(result, Resume)
        # Exactly this stream's later events, in order; nothing from elsewhere.
        assert list(result.replay) == sent[index + 1 :]
        if result.live is not None:
            assert result.live is action.stream
            self.endpoint.stream_finished(result.live, disconnected=True)

    @rule(client=clients, other=clients, call=calls)
    def resume_foreign(self, client: Client, other: Client, call: Any) -> None:
        owner, action = call
        if (
            action is None
            or other.session_id == owner.session_id
            or other.session_id not in self.live
        ):
            return
        last_id = self.events[id(action.stream)][0].split(b"\n", 1)[0].removeprefix(b"id: ")
        result = other.get(last_event_id=last_id)
        if isinstance(result, Resume):
            # The id exists in `other` too (stream ids are per session): replay is
            # `other`'s own stream, never `owner`'s events.
            assert not set(result.replay) & set(self.events[id(action.stream)])
        else:
            assert isinstance(result, Reply)
            assert result.status in (404, 409)

    @rule(client=clients)
    def delete(self, client: Client) -> None:
        reply = client.delete()
        assert isinstance(reply, Reply)
        if client.session_id in self.live:
            assert reply.status == 200
            assert all(s.cancelled for s in reply.cancelled)
            self.live.discard(client.session_id)
        else:
            assert reply.status in (400, 404)

    @rule(seconds=st.sampled_from([1.0, 50.0, 100.0, 150.0]))
    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        expired = self.endpoint.expire_sessions()
        for session_id in expired:
            assert session_id in self.live
            self.live.discard(session_id)

    @precondition(lambda self: bool(self.live))
    @rule(client=clients)
    def ping(self, client: Client) -> None:
        reply = client.request("ping")
        assert isinstance(reply, Reply)
        assert reply.status == (
            200 if client.session_id in self.live else 404 if client.session_id else 400
        )

    @invariant()
    def registry_matches_model(self) -> None:
        assert {s.id for s in self.endpoint.sessions} == self.live
        assert len(self.live) <= 3
        for session in self.endpoint.sessions:
            for request_id, stream in session.in_flight.items():
                assert stream.request_id == request_id
                assert not stream.finished


SessionMachine.TestCase.settings = settings(
    max_examples=examples(100, 5_000), stateful_step_count=30, deadline=None
)
test_session_machine = SessionMachine.TestCase
