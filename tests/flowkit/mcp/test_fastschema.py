"""The schema shortcut only ever skips jsonschema: it never calls an invalid instance valid."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.mcp import LocalProtocolError, Tool
from flowkit.mcp._fastschema import shortcut

_EXACT = {"integer": (int,), "number": (int, float), "string": (str,), "boolean": (bool,)}
_TYPES = list(_EXACT)
_NAMES = st.sampled_from(["a", "b", "count", "text"])

schemas = st.builds(
    lambda props, required, extra: {
        "type": "object",
        "properties": {name: {"type": kind, "description": "x"} for name, kind in props.items()},
        "required": required,
        **({} if extra is None else {"additionalProperties": extra}),
    },
    st.dictionaries(_NAMES, st.sampled_from(_TYPES), max_size=4),
    st.lists(_NAMES, max_size=3, unique=True),
    st.sampled_from([None, True, False]),
)
values = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
instances = st.one_of(st.dictionaries(_NAMES, values, max_size=5), values)


@settings(max_examples=600)
@given(schemas, instances)
def test_shortcut_agrees_with_jsonschema_whenever_it_answers_valid(
    schema: dict[str, Any], instance: Any
) -> None:
    fast = shortcut(schema)
    assert fast is not None  # every generated schema is in the subset
    valid = jsonschema.Draft202012Validator(schema).is_valid(instance)
    if fast(instance):
        assert valid
    # Plain JSON values of the exact types decide at once: the shortcut answers
    # for them (it only defers at the edges, e.g. 1.0 for an integer).
    if valid and isinstance(instance, dict):
        declared = schema["properties"]
        exact = all(
            k not in declared or type(v) in _EXACT[declared[k]["type"]] for k, v in instance.items()
        )
        if exact:
            assert fast(instance)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}},
        {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}},
        {"type": "object", "properties": {"s": {"type": "string", "format": "email"}}},
        {"type": "object", "properties": {"o": {"type": "object"}}},
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
        {"type": "object", "properties": {"e": {"enum": [1, 2]}}},
        {"type": "array"},
    ],
)
def test_schemas_outside_the_subset_get_no_shortcut(schema: dict[str, Any]) -> None:
    assert shortcut(schema) is None


def test_edges_defer_to_jsonschema() -> None:
    fast = shortcut({"type": "object", "properties": {"n": {"type": "integer"}}})
    assert fast is not None
    assert fast({"n": 3})
    assert not fast({"n": 3.0})  # valid (2020-12: an integral float), decided by jsonschema
    assert not fast({"n": True})  # invalid: a boolean is not an integer
    assert not fast([("n", 3)])


def test_a_tool_still_reports_jsonschema_errors() -> None:
    async def count_to(count: int) -> int:
        return count

    tool = Tool.from_function(
        count_to,
        input_schema={
            "type": "object",
            "properties": {"count": {"type": "integer"}},
            "required": ["count"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    assert tool.validate_arguments({"count": 3}) is None
    assert tool.validate_arguments({"count": 3.0}) is None  # jsonschema's verdict
    error = tool.validate_arguments({"count": "3"})
    assert error is not None
    assert "'3' is not of type 'integer'" in error
    extra = tool.validate_arguments({"count": 3, "x": 1})
    assert extra is not None
    assert "Additional properties" in extra
    assert tool.validate_arguments({}) is not None
    tool.validate_structured_content({"n": 1})
    with pytest.raises(LocalProtocolError, match="violates its output_schema"):
        tool.validate_structured_content({"n": "one"})
