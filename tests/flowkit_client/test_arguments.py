"""Tool arguments typed by the input schema (``flowkit call TOOL key=value``), with no server."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from flowkit_client._arguments import UsageError, build_arguments

SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "name": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "maybe": {"type": ["integer", "null"]},
        "anything": {},
    },
}


def test_values_are_typed_from_the_input_schema() -> None:
    pairs = [
        "count=5",
        "ratio=0.5",
        "flag=yes",
        "name=007",
        'tags=["a","b"]',
        "maybe=null",
        "anything=abc",
    ]
    assert build_arguments(pairs, None, SCHEMA) == {
        "count": 5,
        "ratio": 0.5,
        "flag": True,
        "name": "007",  # a string stays as typed, never 7
        "tags": ["a", "b"],
        "maybe": None,
        "anything": "abc",  # untyped and not JSON: the text
    }
    assert build_arguments(["ratio=2", "anything=[1]"], None, SCHEMA) == {
        "ratio": 2,
        "anything": [1],
    }


def test_pairs_override_args_json() -> None:
    assert build_arguments(["count=2"], '{"count": 1, "name": "x"}', SCHEMA) == {
        "count": 2,
        "name": "x",
    }


@pytest.mark.parametrize(
    ("pairs", "json_args", "message"),
    [
        (["count=abc"], None, "count: expected integer, got 'abc'"),
        (["flag=maybe"], None, "flag: expected boolean"),
        (["count"], None, "expected key=value, got 'count'"),
        ([], "[1]", "--args must be a JSON object"),
        ([], "{oops", "--args is not JSON"),
    ],
)
def test_bad_input_is_one_clear_line(
    pairs: Sequence[str], json_args: str | None, message: str
) -> None:
    with pytest.raises(UsageError, match="^" + message.replace("[", r"\[")):
        build_arguments(pairs, json_args, SCHEMA)
