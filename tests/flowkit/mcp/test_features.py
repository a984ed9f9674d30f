"""Hypothesis: resources, prompts and completion requests never crash, in either era.

Arbitrary ``params`` for every new method produce either a refusal or an
:class:`~flowkit.mcp.Invoke` whose reply (after running the user's function)
is a JSON-RPC result or an error with a documented code; never an exception.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowkit.mcp import Invoke, Reply

from ..._budget import examples
from ._client import body_json
from ._features import legacy_client, make_feature_endpoint, modern_request, run

METHODS = (
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
)
# -32601: resources/(un)subscribe in the stateless era; -32020: Mcp-Name mismatch.
CODES = {-32002, -32020, -32601, -32602, -32603}

strings = st.sampled_from(
    ["test://text", "users://a/posts/1", "files:///x", "review", "greet", "code", "user", ""]
) | st.text(max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | strings,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(strings, children, max_size=3)
    ),
    max_leaves=10,
)
refs = st.fixed_dictionaries(
    {"type": st.sampled_from(["ref/prompt", "ref/resource", "ref/other"])},
    optional={"name": json_values, "uri": json_values},
)
params = st.fixed_dictionaries(
    {},
    optional={
        "uri": json_values,
        "name": json_values,
        "cursor": json_values,
        "arguments": json_values | st.dictionaries(strings, strings, max_size=3),
        "ref": refs | json_values,
        "argument": st.fixed_dictionaries({"name": strings, "value": strings}) | json_values,
        "context": st.fixed_dictionaries({"arguments": json_values}) | json_values,
    },
)


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(method=st.sampled_from(METHODS), params=params, modern=st.booleans())
def test_new_request_types_only_give_results_or_documented_errors(
    method: str, params: dict[str, Any], modern: bool
) -> None:
    endpoint = make_feature_endpoint()
    if modern:
        target = params.get("uri") if method == "resources/read" else params.get("name")
        action = modern_request(
            endpoint, method, params, target if isinstance(target, str) else None
        )
    else:
        action = legacy_client(endpoint).request(method, params)
    if isinstance(action, Reply) and action.status != 200:
        assert action.status in (400, 404)
        assert body_json(action)["error"]["code"] in CODES
        return
    assert isinstance(action, Reply | Invoke)
    answer = run(action)
    assert ("result" in answer) != ("error" in answer)
    if "error" in answer:
        assert answer["error"]["code"] in CODES, answer


_REVIEW_ARGUMENTS = ("code", "language", "style")
argument_values = st.sampled_from(["short", "long", "refuse", "x"]) | json_values


def _valid_review(arguments: Any) -> bool:
    """What the ``review`` prompt accepts: its own string arguments, ``code`` given,
    ``style`` one of its ``Literal`` values, ``code`` not the refused value."""
    if arguments is None:
        return False  # code is required
    if not isinstance(arguments, dict):
        return False
    if not set(arguments) <= set(_REVIEW_ARGUMENTS):
        return False
    if not all(isinstance(value, str) for value in arguments.values()):
        return False
    return (
        "code" in arguments
        and arguments.get("style", "short") in ("short", "long")
        and arguments["code"] != "refuse"
    )


@settings(max_examples=examples(300), deadline=None)
@given(
    arguments=st.dictionaries(
        st.sampled_from([*_REVIEW_ARGUMENTS, "other"]), argument_values, max_size=4
    )
    | json_values,
    modern=st.booleans(),
)
def test_prompts_get_renders_exactly_the_valid_arguments(arguments: Any, modern: bool) -> None:
    endpoint = make_feature_endpoint()
    params = {"name": "review", "arguments": arguments}
    if modern:
        action = modern_request(endpoint, "prompts/get", params, "review")
    else:
        action = legacy_client(endpoint).request("prompts/get", params)
    answer = run(action)
    if _valid_review(arguments):
        text = answer["result"]["messages"][0]["content"]["text"]
        assert arguments["code"] in text
        assert f"({arguments.get('style', 'short')})" in text
    else:
        assert answer["error"]["code"] == -32602, answer
