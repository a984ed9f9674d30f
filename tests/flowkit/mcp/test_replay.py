"""The stateless era's input-required results (SEP-2322), replayed from a sealed state.

"Servers MUST treat requestState as an attacker-controlled input ... MUST
reject state that fails verification", and SHOULD bind it to the principal,
a short expiry and the originating request ("Server Requirements (Basic
Workflow)"). Everything here runs without an event loop: a tool awaiting an
answer that is not there raises at once.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowkit.mcp import (
    Endpoint,
    EndpointConfig,
    InputRequired,
    Invoke,
    PromptSet,
    Reply,
    ResourceSet,
    StartCall,
    Tool,
    ToolContext,
    elicitation_request,
    roots_request,
)
from flowkit.mcp._replay import RequestStateSealer

from ._client import FakeClock, body_json

MODERN = "2026-07-28"
CAPS = {"elicitation": {}, "sampling": {}, "roots": {}}
NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
KEY1, KEY2 = b"1" * 32, b"2" * 16


async def greet(city: str, ctx: ToolContext) -> str:
    """Two rounds: a name, then a colour and the roots at once."""
    name = await ctx.elicit("Name?", NAME, key="name")
    colour_schema = {"type": "object", "properties": {"colour": {"type": "string"}}}
    colour, roots = await ctx.ask(
        elicitation_request("Colour?", colour_schema, key="colour"), roots_request()
    )
    who = (name.content or {}).get("name")
    return f"{who} in {city} likes {(colour.content or {}).get('colour')} ({len(roots)} roots)"


def make_endpoint(keys: tuple[bytes, ...] = (KEY1,), wall: FakeClock | None = None) -> Endpoint:
    return Endpoint(
        EndpointConfig(request_state_keys=keys, request_state_ttl=60),
        [Tool.from_function(greet)],
        clock=FakeClock(),
        wall_clock=wall or FakeClock(1.7e9),
    )


def call(
    endpoint: Endpoint,
    *,
    arguments: Any = None,
    principal: str | None = None,
    capabilities: Any = CAPS,
    **extra: Any,
) -> Any:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    params = {"name": "greet", "arguments": arguments or {"city": "Oslo"}, "_meta": meta, **extra}
    message = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
    headers = [
        (b"host", b"localhost:8000"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", MODERN.encode()),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", b"greet"),
    ]
    return endpoint.receive_request("POST", headers, orjson.dumps(message), principal)


def run(action: Any) -> tuple[str, Any]:
    """Run the tool of a StartCall to its end: ("input_required", result) or ("done", value)."""
    assert isinstance(action, StartCall), action
    ctx = action.context(None)
    coroutine = greet(ctx=ctx, **action.arguments)
    try:
        coroutine.send(None)
    except InputRequired as needed:
        return "input_required", needed.result
    except StopIteration as done:
        return "done", done.value
    raise AssertionError("the tool suspended")


def refusal(action: Any) -> dict[str, Any]:
    assert isinstance(action, Reply), action
    assert action.status == 200
    error: dict[str, Any] = body_json(action)["error"]
    return error


ACCEPT = {"action": "accept", "content": {"name": "Ada"}}


def test_rounds_replay_earlier_answers_and_finish() -> None:
    endpoint = make_endpoint()
    kind, first = run(call(endpoint))
    assert kind == "input_required"
    assert first["resultType"] == "input_required"
    assert list(first["inputRequests"]) == ["name"]
    assert first["inputRequests"]["name"]["method"] == "elicitation/create"
    state = first["requestState"]
    assert "Ada" not in state  # opaque
    retry = call(endpoint, inputResponses={"name": ACCEPT}, requestState=state)
    assert retry.context(None).round == 1
    kind, second = run(retry)
    assert kind == "input_required"
    assert list(second["inputRequests"]) == ["colour", "roots_3"]  # one round, both at once
    answers = {
        "colour": {"action": "accept", "content": {"colour": "teal"}},
        "roots_3": {"roots": [{"uri": "file:///a"}]},
        "unexpected": {"ignored": True},  # "SHOULD ignore any information it does not recognize"
    }
    final = call(endpoint, inputResponses=answers, requestState=second["requestState"])
    assert final.context(None).call_id == retry.context(None).call_id  # stable across rounds
    assert run(final) == ("done", "Ada in Oslo likes teal (1 roots)")


def test_missing_or_malformed_answers_are_asked_again_not_refused() -> None:
    endpoint = make_endpoint()
    _, first = run(call(endpoint))
    state = first["requestState"]
    for responses in ({}, {"wrong_key": ACCEPT}, {"name": {"action": "sure"}}):
        kind, again = run(call(endpoint, inputResponses=responses, requestState=state))
        assert kind == "input_required"
        assert list(again["inputRequests"]) == ["name"]


@pytest.mark.parametrize(
    "extra",
    [
        {"inputResponses": "not an object", "requestState": None},
        {"inputResponses": {"name": "not an object"}},
        {"requestState": 42},
        {"requestState": "bm90IG91cnM"},  # base64 of "not ours"
        {"requestState": "!!!"},
    ],
)
def test_malformed_retries_are_invalid_params(extra: dict[str, Any]) -> None:
    endpoint = make_endpoint()
    extra = {k: v for k, v in extra.items() if v is not None}
    error = refusal(call(endpoint, **extra))
    assert error["code"] == -32602


def test_tampered_state_is_refused() -> None:
    endpoint = make_endpoint()
    _, first = run(call(endpoint))
    state = first["requestState"]
    for i in range(len(state)):  # every character, the last's spare bits included
        flipped = state[:i] + ("A" if state[i] != "A" else "B") + state[i + 1 :]
        error = refusal(call(endpoint, inputResponses={"name": ACCEPT}, requestState=flipped))
        assert error == {
            "code": -32602,
            "message": "Invalid params: requestState failed verification",
        }


def test_state_is_bound_to_the_principal_the_request_and_a_short_expiry() -> None:
    wall = FakeClock(1.7e9)
    endpoint = make_endpoint(wall=wall)
    _, first = run(call(endpoint, principal="alice"))
    state = {"inputResponses": {"name": ACCEPT}, "requestState": first["requestState"]}
    assert refusal(call(endpoint, principal="bob", **state))["code"] == -32602
    assert refusal(call(endpoint, principal=None, **state))["code"] == -32602
    other_request = call(endpoint, principal="alice", arguments={"city": "Rome"}, **state)
    assert refusal(other_request)["code"] == -32602
    assert isinstance(call(endpoint, principal="alice", **state), StartCall)
    wall.advance(61)  # request_state_ttl=60
    assert refusal(call(endpoint, principal="alice", **state))["code"] == -32602


def test_keys_rotate_and_a_per_process_key_is_not_shared() -> None:
    old = make_endpoint(keys=(KEY1,))
    _, first = run(call(old))
    state = {"inputResponses": {"name": ACCEPT}, "requestState": first["requestState"]}
    rotated = make_endpoint(keys=(KEY2, KEY1))  # KEY2 seals now; KEY1 still opens
    kind, second = run(call(rotated, **state))
    assert kind == "input_required"
    assert refusal(call(old, inputResponses={}, requestState=second["requestState"]))
    assert refusal(call(make_endpoint(keys=(KEY2,)), **state))["code"] == -32602
    assert refusal(call(make_endpoint(keys=()), **state))["code"] == -32602


def test_the_sealer_refuses_anything_it_did_not_seal_or_that_expired() -> None:
    wall = FakeClock(100.0)
    sealer = RequestStateSealer((KEY1,), ttl=10, now=wall)
    token = sealer.seal({"x": 1})
    assert sealer.open(token) == {"x": 1, "exp": 110.0}
    assert sealer.open(token + "A") is None
    assert sealer.open("") is None
    assert RequestStateSealer((KEY2,), ttl=10, now=wall).open(token) is None
    assert RequestStateSealer((), ttl=10, now=wall).ephemeral
    wall.advance(10)
    assert sealer.open(token) is None


def test_capabilities_are_checked_before_a_round_is_asked() -> None:
    endpoint = make_endpoint()
    action = call(endpoint, capabilities={"sampling": {}})
    ctx = action.context(None)
    assert not ctx.supports("elicitation")
    assert ctx.supports("sampling")
    with pytest.raises(Exception, match="did not declare the elicitation capability"):
        greet(ctx=ctx, city="x").send(None)


def test_a_stateless_context_has_no_stream_to_notify_on() -> None:
    async def never(method: str, params: Any) -> None:
        raise AssertionError("the stateless era has no channel for notifications")

    ctx = call(make_endpoint()).context(None, never)
    with pytest.raises(StopIteration) as done:
        ctx.elicitation_complete("e").send(None)
    assert done.value.value is False


def test_keys_must_be_aes_keys() -> None:
    with pytest.raises(ValueError, match="16, 24 or 32 bytes"):
        EndpointConfig(request_state_keys=(b"short",))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
RESPONSES = st.dictionaries(
    st.sampled_from(["name", "colour", "roots_3", "x"]),
    JSON | st.dictionaries(st.sampled_from(["action", "content", "roots"]), JSON, max_size=3),
    max_size=4,
)


@given(
    responses=RESPONSES | JSON,
    state=st.none() | st.text(max_size=40) | JSON,
    sealed=st.booleans(),
)
def test_any_retry_is_a_round_or_an_invalid_params_never_a_crash(
    responses: Any, state: Any, sealed: bool
) -> None:
    endpoint = make_endpoint()
    if sealed:  # a real state, with whatever answers come along
        state = run(call(endpoint))[1]["requestState"]
    extra = {"inputResponses": responses}
    if state is not None:
        extra["requestState"] = state
    action = call(endpoint, **extra)
    if isinstance(action, Reply):
        assert refusal(action)["code"] == -32602
        return
    kind, value = run(action)
    assert kind in ("input_required", "done")
    if kind == "input_required":
        assert value["inputRequests"]
        assert isinstance(value["requestState"], str)


# -- prompts/get and resources/read ask too (SEP-2322 "Supported Requests") ----------------------


def feature_endpoint() -> Endpoint:
    prompts, resources = PromptSet(), ResourceSet()

    @prompts.prompt()
    async def plan(day: str, ctx: ToolContext) -> str:
        """Plan a day, in the user's mood."""
        mood = await ctx.elicit(
            "Mood?", {"type": "object", "properties": {"m": {"type": "string"}}}
        )
        return f"Plan {day}, {(mood.content or {}).get('m')}."

    @resources.resource("notes://{day}", mime_type="text/plain")
    async def note(day: str, ctx: ToolContext) -> str:
        roots = await ctx.list_roots(key="roots")
        return f"{day} under {roots[0].uri}"

    return Endpoint(
        EndpointConfig(request_state_keys=(KEY1,)),
        prompts=prompts,
        resources=resources,
        clock=FakeClock(),
    )


def modern_request(endpoint: Endpoint, method: str, params: dict[str, Any], name: str) -> Any:
    """A stateless-era request from a client that declared every capability."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": CAPS,
    }
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    headers = [
        (b"host", b"localhost:8000"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", MODERN.encode()),
        (b"mcp-method", method.encode()),
        (b"mcp-name", name.encode()),
    ]
    return endpoint.receive_request("POST", headers, orjson.dumps(message))


def invoke(action: Any) -> dict[str, Any]:
    """Answer an Invoke as the adapter does (flowkit_http._invoke.run_invoke)."""
    assert isinstance(action, Invoke), action
    try:
        action.call().send(None)
    except InputRequired as needed:
        reply = action.input_required(needed)
    except StopIteration as done:
        reply = action.reply(done.value)
    result: dict[str, Any] = body_json(reply)["result"]
    return result


@pytest.mark.parametrize(
    ("method", "params", "name", "answer"),
    [
        (
            "prompts/get",
            {"name": "plan", "arguments": {"day": "mon"}},
            "plan",
            {"elicitation_1": {"action": "accept", "content": {"m": "calm"}}},
        ),
        (
            "resources/read",
            {"uri": "notes://tue"},
            "notes://tue",
            {"roots": {"roots": [{"uri": "file:///n"}]}},
        ),
    ],
)
def test_prompts_and_resources_ask_through_input_required_results(
    method: str, params: dict[str, Any], name: str, answer: dict[str, Any]
) -> None:
    endpoint = feature_endpoint()
    assert endpoint.prompts.get("plan").arguments[0].name == "day"  # ctx is no argument
    first = invoke(modern_request(endpoint, method, params, name))
    assert first["resultType"] == "input_required"
    assert list(first["inputRequests"]) == list(answer)
    retry = {**params, "inputResponses": answer, "requestState": first["requestState"]}
    done = invoke(modern_request(endpoint, method, retry, name))
    assert done["resultType"] == "complete"
    text = (
        done["messages"][0]["content"]["text"]
        if method == "prompts/get"
        else done["contents"][0]["text"]
    )
    assert text in ("Plan mon, calm.", "tue under file:///n")
