"""Server-to-client requests in the sans-IO core: building, capabilities, answers.

The handshake era's correlation of a client's response with the request a
tool sent ("Responses": matched by id; anything else is ignored) and the
checks of what a tool may ask (2025-11-25 client/elicitation, sampling,
roots), with no event loop.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.mcp import (
    Answer,
    ClientRequestError,
    ElicitResult,
    Endpoint,
    InvalidClientResponse,
    LocalProtocolError,
    OutgoingStream,
    Reply,
    Response,
    Root,
    SamplingResult,
    StartCall,
    Tool,
    ToolContext,
    elicitation_request,
    result_of,
    roots_request,
    sampling_request,
    url_elicitation_request,
)

from ._client import Client, FakeClock, body_json, counter_ids, sse_data

CAPS = {"elicitation": {"form": {}, "url": {}}, "sampling": {}, "roots": {"listChanged": True}}
FORM = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


async def ask_name(ctx: ToolContext) -> str:
    answer = await ctx.elicit("Name?", FORM)
    return str(answer.content)


def make_endpoint() -> Endpoint:
    return Endpoint(
        tools=[Tool.from_function(ask_name)], clock=FakeClock(), new_session_id=counter_ids()
    )


def connect(endpoint: Endpoint, capabilities: Any = CAPS) -> Client:
    client = Client(endpoint)
    reply = client.request(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {}},
    )
    assert isinstance(reply, Reply)
    assert reply.status == 200
    client.session_id = dict(reply.headers)[b"mcp-session-id"].decode()
    client.notify("notifications/initialized")
    return client


def start(client: Client) -> StartCall:
    action = client.call("ask_name")
    assert isinstance(action, StartCall), action
    action.stream.open()
    return action


def response(ask_id: Any, result: Any = None, error: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": ask_id}
    if error is not None:
        body["error"] = error
    else:
        body["result"] = result
    return body


def test_the_request_goes_out_on_the_calls_stream_and_the_response_resumes_it() -> None:
    endpoint = make_endpoint()
    client = connect(endpoint)
    call = start(client)
    assert call.client_capabilities == CAPS
    ask_id, event = endpoint.ask(call.stream, elicitation_request("Name?", FORM))
    sent = sse_data(event)
    assert sent == {
        "jsonrpc": "2.0",
        "id": ask_id,
        "method": "elicitation/create",
        "params": {"mode": "form", "message": "Name?", "requestedSchema": FORM},
    }
    answer = client.post(response(ask_id, {"action": "accept", "content": {"name": "Ada"}}))
    assert isinstance(answer, Answer)
    assert answer.stream is call.stream
    assert answer.ask_id == ask_id
    assert answer.reply == Reply(202)
    assert result_of(answer.response) == {"action": "accept", "content": {"name": "Ada"}}


def test_a_response_twice_late_or_from_another_session_is_accepted_and_ignored() -> None:
    endpoint = make_endpoint()
    client, other = connect(endpoint), connect(endpoint)
    call = start(client)
    ask_id, _ = endpoint.ask(call.stream, roots_request())
    # Another session cannot answer it, even knowing the id.
    assert other.post(response(ask_id, {"roots": []})) == Reply(202)
    assert isinstance(client.post(response(ask_id, {"roots": []})), Answer)
    assert client.post(response(ask_id, {"roots": []})) == Reply(202)  # twice
    late_id, _ = endpoint.ask(call.stream, roots_request())
    assert endpoint.forget_ask(call.stream, late_id) == b""  # the tool gave up
    assert client.post(response(late_id, {"roots": []})) == Reply(202)  # late
    assert client.post(response(12345, {"roots": []})) == Reply(202)  # never asked


def test_forgetting_with_a_reason_cancels_the_request_at_the_client() -> None:
    endpoint = make_endpoint()
    call = start(connect(endpoint))
    ask_id, _ = endpoint.ask(call.stream, roots_request())
    event = endpoint.forget_ask(call.stream, ask_id, cancel="no answer within 5 s")
    assert sse_data(event) == {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": ask_id, "reason": "no answer within 5 s"},
    }


def test_a_malformed_response_body_is_the_usual_400() -> None:
    endpoint = make_endpoint()
    client = connect(endpoint)
    reply = client.post({"jsonrpc": "2.0", "id": "x"})  # neither result nor error
    assert isinstance(reply, Reply)
    assert reply.status == 400


def test_stateless_calls_never_send_requests() -> None:
    endpoint = make_endpoint()
    call = start(connect(endpoint))
    assert call.replay is None  # the handshake era waits on the stream instead
    stateless = OutgoingStream(kind="call", stream_id="0", request_id=1, result_type=True)
    with pytest.raises(LocalProtocolError, match="handshake-era"):
        endpoint.ask(stateless, roots_request())


def test_result_of_raises_the_clients_error() -> None:
    error = {"code": -1, "message": "User rejected sampling request", "data": {"why": "no"}}
    with pytest.raises(ClientRequestError, match="User rejected") as caught:
        result_of(Response("a", None, error))
    assert (caught.value.code, caught.value.data) == (-1, {"why": "no"})
    with pytest.raises(InvalidClientResponse):
        result_of(Response("a", None, {"code": "x"}))


# -- capabilities ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "declared", "problem"),
    [
        (elicitation_request("m", FORM), {}, "did not declare the elicitation capability"),
        (elicitation_request("m", FORM), {"elicitation": {}}, None),  # {} is form mode
        (url_elicitation_request("m", "https://x.test/", "e1"), {"elicitation": {}}, "url mode"),
        (url_elicitation_request("m", "https://x.test/", "e1"), {"elicitation": {"url": {}}}, None),
        (elicitation_request("m", FORM), {"elicitation": {"url": {}}}, "form mode"),
        (sampling_request("hi", max_tokens=5), {"roots": {}}, "sampling capability"),
        (sampling_request("hi", max_tokens=5, tools=[{"name": "t"}]), {"sampling": {}}, "tools"),
        (sampling_request("hi", max_tokens=5, include_context="thisServer"), CAPS, "context"),
        (roots_request(), {"sampling": {}}, "roots capability"),
        (roots_request(), "not an object", "roots capability"),
    ],
)
def test_capability_problems(request_: Any, declared: Any, problem: str | None) -> None:
    found = request_.capability_problem(declared)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


# -- what a tool may ask (form mode's restricted schema) ----------------------------------

SEP1330 = {
    "type": "object",
    "properties": {
        "untitled": {"type": "string", "enum": ["option1", "option2"], "default": "option1"},
        "titled": {
            "type": "string",
            "oneOf": [{"const": "v1", "title": "First"}, {"const": "v2", "title": "Second"}],
        },
        "legacy": {"type": "string", "enum": ["o1", "o2"], "enumNames": ["One", "Two"]},
        "multi": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 2},
        "multi_titled": {
            "type": "array",
            "items": {"anyOf": [{"const": "a", "title": "A"}]},
            "default": ["a"],
        },
        "when": {"type": "string", "format": "date", "default": "2026-01-01"},
        "score": {"type": "number", "minimum": 0, "maximum": 100, "default": 95.5},
        "ok": {"type": "boolean", "default": True},
    },
}


def test_form_mode_accepts_every_enum_variant_and_defaults() -> None:
    request = elicitation_request("Pick", SEP1330)
    assert request.params["requestedSchema"] == SEP1330


@pytest.mark.parametrize(
    ("prop", "message"),
    [
        ({"type": "object", "properties": {}}, "has type 'object'"),
        ({"type": "string", "format": "ipv4"}, "has format 'ipv4'"),
        ({"type": "string", "enum": [1, 2]}, "enum that is not a list of strings"),
        ({"type": "array", "items": {"type": "integer"}}, "not an enum"),
        ({"type": "integer", "default": "three"}, "default of elicitation property"),
        ({"type": "string", "format": "date", "default": "x"}, "'x' is not a 'date'"),
        ({"type": "string", "$ref": "#/x"}, "outside form mode"),
        ({"type": "string", "oneOf": [{"const": "a"}]}, "oneOf"),
    ],
)
def test_form_mode_refuses_what_clients_cannot_render(prop: Any, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        elicitation_request("m", {"type": "object", "properties": {"p": prop}})


def test_builders_refuse_misuse() -> None:
    with pytest.raises(LocalProtocolError, match='"type": "object"'):
        elicitation_request("m", {"type": "string"})
    with pytest.raises(LocalProtocolError, match="absolute URL"):
        url_elicitation_request("m", "/relative", "e")
    with pytest.raises(LocalProtocolError, match="max_tokens"):
        sampling_request("m", max_tokens=0)
    with pytest.raises(LocalProtocolError, match="message with a role"):
        sampling_request([], max_tokens=3)


# -- answers ----------------------------------------------------------------------------------


def test_answers_become_values() -> None:
    form = elicitation_request("m", FORM)
    assert form.parse({"action": "accept", "content": {"name": "Ada"}}) == ElicitResult(
        "accept", {"name": "Ada"}
    )
    assert form.parse({"action": "decline"}) == ElicitResult("decline")
    url = url_elicitation_request("m", "https://x.test/", "e")
    assert url.parse({"action": "accept"}) == ElicitResult("accept")
    sampled = sampling_request("hi", max_tokens=5).parse(
        {"role": "assistant", "content": {"type": "text", "text": "yo"}, "model": "m"}
    )
    assert sampled == SamplingResult("assistant", {"type": "text", "text": "yo"}, "m")
    assert sampled.text == "yo"
    roots = roots_request().parse({"roots": [{"uri": "file:///a", "name": "a"}]})
    assert roots == (Root("file:///a", "a"),)


@pytest.mark.parametrize(
    ("request_", "result", "message"),
    [
        (elicitation_request("m", FORM), {"action": "maybe"}, "action"),
        (elicitation_request("m", FORM), {"action": "accept", "content": {}}, "'name'"),
        (elicitation_request("m", FORM), {"action": "accept", "content": [1]}, "object"),
        (elicitation_request("m", FORM), {"action": "accept", "content": {"name": 3}}, "schema"),
        (sampling_request("x", max_tokens=1), {"role": "bot"}, "role"),
        (sampling_request("x", max_tokens=1), {"role": "assistant", "content": 3}, "content"),
        (
            sampling_request("x", max_tokens=1),
            {"role": "assistant", "content": {"type": "text"}},
            "model",
        ),
        (roots_request(), {"roots": {}}, "roots"),
        (roots_request(), {"roots": [{"uri": "https://x"}]}, "file://"),
        (roots_request(), "nope", "not an object"),
    ],
)
def test_wrong_shapes_are_invalid_client_responses(
    request_: Any, result: Any, message: str
) -> None:
    with pytest.raises(InvalidClientResponse, match=message):
        request_.parse(result)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
REQUESTS = [
    elicitation_request("m", SEP1330),
    url_elicitation_request("m", "https://x.test/", "e"),
    sampling_request("m", max_tokens=3),
    roots_request(),
]


@given(
    st.sampled_from(REQUESTS),
    JSON
    | st.dictionaries(
        st.sampled_from(["action", "content", "role", "model", "roots", "stopReason"]),
        JSON,
        max_size=4,
    ),
)
def test_any_answer_is_a_value_or_an_invalid_client_response(request_: Any, result: Any) -> None:
    with contextlib.suppress(InvalidClientResponse):
        request_.parse(result)


@given(st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=20)), JSON, JSON)
def test_any_response_post_is_202_or_an_answer_never_a_crash(
    ask_id: Any, result: Any, error: Any
) -> None:
    endpoint = make_endpoint()
    client = connect(endpoint)
    call = start(client)
    real, _ = endpoint.ask(call.stream, roots_request())
    for body in (response(ask_id, result), response(real, error=error or {"x": 1})):
        action = client.post(orjson.dumps(body))
        assert isinstance(action, Reply | Answer), action
        if isinstance(action, Reply):
            assert action.status in (202, 400), body_json(action)
        else:
            with contextlib.suppress(ClientRequestError):
                result_of(action.response)


def test_the_context_parameter_is_found_and_never_an_argument() -> None:
    def plain(n: int, ctx: ToolContext) -> int:
        return n

    tool = Tool.from_function(plain)
    assert tool.context_param == "ctx"
    assert tool.input_schema["properties"] == {"n": {"type": "integer"}}
    assert (
        Tool.from_function(lambda n: n, name="x", input_schema={"type": "object"}).context_param
        is None
    )
    with pytest.raises(LocalProtocolError, match="thread=True runs no awaits"):
        Tool.from_function(plain, thread=True)

    def two(a: ToolContext, b: ToolContext) -> None: ...

    with pytest.raises(TypeError, match="only one parameter may take the ToolContext"):
        Tool.from_function(two)


PROPERTY = st.dictionaries(
    st.sampled_from(
        ["type", "enum", "oneOf", "items", "default", "format", "minimum", "title", "anyOf"]
    ),
    JSON | st.sampled_from(["string", "number", "integer", "boolean", "array", "object"]),
    max_size=4,
)


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=5), PROPERTY, max_size=3))
def test_any_form_schema_is_built_or_refused_with_local_protocol_error(
    properties: dict[str, Any],
) -> None:
    schema = {"type": "object", "properties": properties}
    try:
        request = elicitation_request("m", schema)
    except LocalProtocolError:
        return
    # Built: every property is one form mode allows, so an answer of its defaults parses.
    defaults = {k: p["default"] for k, p in properties.items() if "default" in p}
    assert request.parse({"action": "accept", "content": defaults}).content == defaults
