"""Prompts and ``completion/complete`` in both eras.

Spec: 2025-11-25 and 2026-07-28 ``server/prompts`` ("Listing Prompts",
"Getting a Prompt", "Error Handling") and ``server/utilities/completion``
("Requesting Completions", "Completion Results": at most 100 values).
"""

from __future__ import annotations

from typing import Any

import pytest

from flowkit.mcp import (
    EndpointConfig,
    LocalProtocolError,
    OpenListenStream,
    Prompt,
    PromptSet,
    Reply,
    ResourceSet,
)
from flowkit.mcp._completion import MAX_COMPLETIONS

from ._client import Client, body_json, sse_data
from ._features import legacy_client, make_feature_endpoint, modern_request, run


def test_prompts_list_publishes_arguments_from_the_signature() -> None:
    client = legacy_client(make_feature_endpoint())
    prompts = run(client.request("prompts/list"))["result"]["prompts"]
    assert prompts == [
        {"name": "greet", "description": "Say hello."},
        {
            "name": "review",
            "description": "Review code.",
            "arguments": [
                {"name": "code", "required": True},
                {"name": "language", "required": False},
                {"name": "style", "required": False},
            ],
        },
    ]


def test_get_renders_text_image_and_embedded_resource_messages() -> None:
    client = legacy_client(make_feature_endpoint())
    result = run(client.request("prompts/get", {"name": "review", "arguments": {"code": "x=1"}}))
    messages = result["result"]["messages"]
    assert result["result"]["description"] == "Review code."
    assert messages[0] == {
        "role": "user",
        "content": {"type": "text", "text": "Review this python code (short):\nx=1"},
    }
    assert messages[1]["role"] == "assistant"
    assert messages[2]["content"]["type"] == "image"
    assert messages[2]["role"] == "user"
    assert messages[3]["content"]["resource"]["uri"] == "test://text"
    simple = run(client.request("prompts/get", {"name": "greet"}))["result"]
    assert simple["messages"] == [{"role": "user", "content": {"type": "text", "text": "Hello!"}}]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "nope"}, "Unknown prompt: nope"),
        ({"name": 3}, '"name" must be a string'),
        ({"name": "review"}, "needs argument(s): code"),
        ({"name": "review", "arguments": {"code": 1}}, "must be a string"),
        ({"name": "review", "arguments": {"code": "x", "colour": "red"}}, "no argument 'colour'"),
        ({"name": "review", "arguments": ["x"]}, '"arguments" must be an object'),
        ({"name": "review", "arguments": {"code": "refuse"}}, "code must not be 'refuse'"),
        (
            {"name": "review", "arguments": {"code": "x", "style": "medium"}},
            "Argument 'style' must be one of 'short', 'long', not 'medium'",
        ),
    ],
)
def test_bad_prompt_requests_are_32602_with_a_specific_message(
    params: dict[str, Any], message: str
) -> None:
    actions = [legacy_client(make_feature_endpoint()).request("prompts/get", params)]
    if isinstance(params["name"], str):  # else Mcp-Name cannot mirror it (-32020 first)
        actions.append(
            modern_request(make_feature_endpoint(), "prompts/get", params, params["name"])
        )
    for action in actions:
        error = run(action)["error"]
        assert error["code"] == -32602, error
        assert message in error["message"], error


def test_stateless_prompts_carry_result_type_and_list_hints() -> None:
    endpoint = make_feature_endpoint(EndpointConfig(cache_ttl_ms=60000))
    listed = run(modern_request(endpoint, "prompts/list", {}))["result"]
    assert (listed["resultType"], listed["ttlMs"], listed["cacheScope"]) == (
        "complete",
        60000,
        "public",
    )
    got = run(modern_request(endpoint, "prompts/get", {"name": "greet"}, "greet"))["result"]
    assert got["resultType"] == "complete"
    assert "ttlMs" not in got
    mismatch = modern_request(endpoint, "prompts/get", {"name": "greet"}, "review")
    assert isinstance(mismatch, Reply)
    assert body_json(mismatch)["error"]["code"] == -32020


def test_prompts_capability_and_list_changed_on_listen() -> None:
    endpoint = make_feature_endpoint(EndpointConfig(prompts_list_changed=True))
    caps = run(modern_request(endpoint, "server/discover", {}))["result"]["capabilities"]
    assert caps["prompts"] == {"listChanged": True}
    action = modern_request(
        endpoint, "subscriptions/listen", {"notifications": {"promptsListChanged": True}}
    )
    assert isinstance(action, OpenListenStream)
    action.stream.open()
    [(_, data)] = endpoint.list_changed("prompts")
    assert sse_data(data)["method"] == "notifications/prompts/list_changed"
    assert endpoint.list_changed("tools") == ()  # not asked for, not advertised


def _complete(ref: dict[str, Any], name: str, value: str, **context: str) -> Any:
    params: dict[str, Any] = {"ref": ref, "argument": {"name": name, "value": value}}
    if context:
        params["context"] = {"arguments": context}
    return run(legacy_client(make_feature_endpoint()).request("completion/complete", params))


def test_completion_of_template_variables_filters_the_declared_values() -> None:
    ref = {"type": "ref/resource", "uri": "users://{user}/posts/{post}"}
    assert _complete(ref, "user", "AL")["result"] == {
        "completion": {"values": ["alice", "albert"], "total": 2, "hasMore": False}
    }
    # A variable without a completer completes to nothing.
    assert _complete(ref, "post", "1")["result"]["completion"]["values"] == []


def test_completion_of_prompt_arguments_gets_the_resolved_context() -> None:
    ref = {"type": "ref/prompt", "name": "review"}
    values = _complete(ref, "language", "py", code="x")["result"]["completion"]["values"]
    assert values == ["py-{'code': 'x'}"]
    # A Literal argument offers its values.
    assert _complete(ref, "style", "l")["result"]["completion"]["values"] == ["long"]


def test_completion_is_capped_at_100_values() -> None:
    prompts = PromptSet()
    prompts.prompt(name="p", complete={"n": [f"v{i}" for i in range(250)]})(lambda n: n)
    endpoint = make_feature_endpoint()
    endpoint.state.prompts = prompts
    request = {
        "ref": {"type": "ref/prompt", "name": "p"},
        "argument": {"name": "n", "value": "v"},
    }
    completion = run(legacy_client(endpoint).request("completion/complete", request))["result"]
    assert len(completion["completion"]["values"]) == MAX_COMPLETIONS
    assert completion["completion"]["total"] == 250
    assert completion["completion"]["hasMore"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"ref": {"type": "ref/prompt", "name": "review"}},
        {"ref": {"type": "ref/tool", "name": "x"}, "argument": {"name": "a", "value": ""}},
        {"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "a", "value": ""}},
        {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "zz", "value": ""}},
        {
            "ref": {"type": "ref/resource", "uri": "test://x/{y}"},
            "argument": {"name": "y", "value": ""},
        },
        {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "code", "value": 3}},
        {
            "ref": {"type": "ref/prompt", "name": "review"},
            "argument": {"name": "code", "value": ""},
            "context": {"arguments": {"a": 1}},
        },
    ],
)
def test_malformed_completion_requests_are_32602(params: dict[str, Any]) -> None:
    reply = legacy_client(make_feature_endpoint()).request("completion/complete", params)
    assert isinstance(reply, Reply)
    assert body_json(reply)["error"]["code"] == -32602


def test_a_completer_returning_non_strings_is_an_internal_error() -> None:
    prompts = PromptSet()
    prompts.prompt(name="p", complete={"n": lambda value, context: [1, 2]})(lambda n: n)
    endpoint = make_feature_endpoint()
    endpoint.state.prompts = prompts
    request = {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "n", "value": ""}}
    error = run(legacy_client(endpoint).request("completion/complete", request))["error"]
    assert error["code"] == -32603


def test_declaration_errors_are_specific() -> None:
    def takes_int(n: int) -> str:
        return ""

    with pytest.raises(TypeError, match=r"takes_int\(n\): prompt arguments are strings"):
        Prompt.from_function(takes_int)
    with pytest.raises(LocalProtocolError, match="no argument"):
        Prompt.from_function(lambda a: "", name="p", complete={"b": ["x"]})
    with pytest.raises(LocalProtocolError, match="duplicate"):
        PromptSet([Prompt.from_function(lambda: "", name="p")] * 2)
    with pytest.raises(TypeError, match="list of strings"):
        Prompt.from_function(lambda a: "", name="p", complete={"a": "abc"})


def test_completion_without_the_completions_capability_is_method_not_found() -> None:
    """2025-11-25 / 2026-07-28 completion "Error Handling": -32601 (Capability not supported)."""
    for modern in (False, True):
        endpoint = make_feature_endpoint()
        endpoint.state.prompts.remove("greet")
        endpoint.state.prompts.remove("review")
        endpoint.state.resources = ResourceSet()  # static resources only would not do either
        endpoint.state.resources.resource("test://text")(lambda: "x")
        params = {
            "ref": {"type": "ref/prompt", "name": "review"},
            "argument": {"name": "code", "value": ""},
        }
        if modern:
            reply = modern_request(endpoint, "completion/complete", params)
        else:
            client = Client(endpoint)
            assert "completions" not in body_json(client.initialize())["result"]["capabilities"]
            reply = client.request("completion/complete", params)
        assert isinstance(reply, Reply)
        assert reply.status == (404 if modern else 200)
        assert body_json(reply)["error"]["code"] == -32601
