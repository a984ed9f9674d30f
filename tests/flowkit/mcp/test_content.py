"""What a tool may return, and how it becomes a ``CallToolResult`` (no event loop).

The rule: JSON values plus what orjson encodes natively (dataclasses,
datetime, date, time, UUID, enums); anything else is a ``TypeError``, the
same for a direct result, ``Result.structured`` and a ready
``CallToolResult`` — never its ``repr`` passed off as a success.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Any

import orjson
import pytest

from flowkit.mcp import (
    Result,
    Tool,
    describe_item,
    json_value,
    text_content,
    to_call_result,
    tool_result,
    with_delivery,
)


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


WHEN = datetime.datetime(2026, 7, 28, 12, 0, tzinfo=datetime.UTC)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_returnable_values_become_json() -> None:
    value = {
        "point": Point(1, 2),
        "when": WHEN,
        "day": WHEN.date(),
        "time": datetime.time(8, 30),
        "id": ID,
        "colour": Colour.RED,
        "pair": (1, 2),
        "none": None,
    }
    result = to_call_result(value)
    expected = {
        "point": {"x": 1, "y": 2},
        "when": "2026-07-28T12:00:00+00:00",
        "day": "2026-07-28",
        "time": "08:30:00",
        "id": str(ID),
        "colour": "red",
        "pair": [1, 2],
        "none": None,
    }
    # The structured content is JSON (what the client gets, and what an
    # output schema checks), and its text block says the same.
    assert result["structuredContent"] == expected
    assert orjson.loads(result["content"][-1]["text"]) == expected


def test_a_returned_dataclass_is_structured_content() -> None:
    assert to_call_result(Point(3, 4)) == tool_result(structured={"x": 3, "y": 4})


@pytest.mark.parametrize(
    ("value", "text"),
    [([1, "a"], '[1,"a"]'), (3, "3"), (WHEN, '"2026-07-28T12:00:00+00:00"'), ("plain", "plain")],
)
def test_other_values_are_one_text_block(value: Any, text: str) -> None:
    assert to_call_result(value) == {"content": [text_content(text)]}


@pytest.mark.parametrize(
    "value",
    [
        object(),
        {1, 2},
        b"bytes",
        2**70,
        {"tags": {"a", "b"}},
        {1: "non-string key"},
        [object()],
        Point(1, {2}),  # type: ignore[arg-type]
        Result(structured={"tags": {"a"}}),
        Result(content=[{"type": "text", "text": b"raw"}]),
        {"content": [], "structuredContent": {"tags": {"a"}}},
        {"content": [{"type": "image", "data": b"raw", "mimeType": "image/png"}]},
    ],
    # By type, not repr: a set's order and an object's address change between
    # interpreters, and pytest-xdist's workers must collect the same ids.
    ids=lambda value: type(value).__name__,
)
def test_anything_else_is_a_type_error_never_its_repr(value: Any) -> None:
    with pytest.raises(TypeError, match=r"is not a JSON value.*a tool may return JSON types"):
        to_call_result(value)


def test_output_schema_checks_the_json_the_client_sees() -> None:
    tool = Tool(
        "t",
        "",
        {"type": "object"},
        lambda: None,
        output_schema={
            "type": "object",
            "properties": {"when": {"type": "string"}, "colour": {"enum": ["red"]}},
            "required": ["when", "colour"],
        },
    )
    result = to_call_result(Result(structured={"when": WHEN, "colour": Colour.RED}))
    tool.validate_structured_content(result["structuredContent"])  # no error: strings now


def test_describe_item_never_fails() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    assert describe_item("text") == "text"
    assert describe_item({"a": [1]}) == '{"a":[1]}'
    assert describe_item({1, 2}) == "{1, 2}"  # a description may be a repr
    assert describe_item(Hostile()) == "<Hostile>"
    loop: list[Any] = []
    loop.append(loop)
    assert describe_item(loop) == "[[...]]"
    long = describe_item("x" * 500)
    assert len(long) == 200
    assert long.endswith("…")
    assert describe_item({"a": 1}, b'{"a":1}') == '{"a":1}'


def test_json_value_names_what_it_checks() -> None:
    assert json_value(Point(1, 2), "Partial data") == b'{"x":1,"y":2}'
    with pytest.raises(TypeError, match=r"^Partial data is not a JSON value"):
        json_value({"s": {1}}, "Partial data")


def test_with_delivery_reports_only_what_was_missed() -> None:
    assert with_delivery(tool_result("x")) == tool_result("x")
    reported = with_delivery(tool_result("x"), dropped_logs=2, undelivered_partials=3)
    assert reported["_meta"] == {
        "dev.flowkit/droppedLogs": 2,
        "dev.flowkit/undeliveredPartials": 3,
    }


@pytest.mark.parametrize("structured", [[1, 2], "text", 3])
def test_structured_content_is_a_json_object(structured: Any) -> None:
    with pytest.raises(TypeError, match="structuredContent must be a JSON object"):
        to_call_result(Result(structured=structured))
