"""Parameter types beyond JSON's: their schemas, validation and conversion (no event loop).

Dataclasses, ``Enum``/``Literal``, ``datetime``/``date`` (format-checked),
and sets are derived from the type hints (pydantic models: test_schema_pydantic.py), and the tool receives the annotated types; anything else is a
``TypeError`` naming the parameter, at declaration.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pytest

from flowkit.mcp import Tool, ToolSet
from flowkit.mcp._schema import schema_from_function


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0
    at: datetime.datetime | None = None


@dataclasses.dataclass
class Shape:
    name: str
    corners: list[Point]
    colour: Colour = Colour.RED
    tags: set[str] = dataclasses.field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a shape needs a name")


def draw(
    shape: Shape,
    when: datetime.datetime,
    day: datetime.date,
    level: Level,
    ids: set[int],
    frozen: frozenset[Colour],
    mode: Literal["fast", "slow"] = "fast",
    path: tuple[Point, ...] = (),
    optional: Colour | None = None,
    by_name: dict[str, datetime.date] | None = None,
    note: Annotated[str, "free text"] = "",
) -> None:
    pass


ARGUMENTS: dict[str, Any] = {
    "shape": {"name": "sq", "corners": [{"x": 1}, {"x": 2, "y": 3, "at": "2026-07-28T10:00:00Z"}]},
    "when": "2026-07-28T12:30:00.5+02:00",
    "day": "2026-07-28",
    "level": 2,
    "ids": [3, 1, 2],
    "frozen": ["blue"],
    "path": [{"x": 9}],
    "optional": "blue",
    "by_name": {"start": "2026-01-01"},
}


def test_schemas_of_the_supported_types() -> None:
    schema = schema_from_function(draw)
    props = schema["properties"]
    assert props["shape"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "corners": {"type": "array", "items": props["path"]["items"]},
            "colour": {"enum": ["red", "blue"], "type": "string", "default": "red"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
        "additionalProperties": False,
        "required": ["name", "corners"],
    }
    assert props["path"]["items"]["required"] == ["x"]
    assert props["path"]["items"]["properties"]["at"] == {
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
        "default": None,
    }
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["day"] == {"type": "string", "format": "date"}
    assert props["level"] == {"enum": [1, 2], "type": "integer"}
    assert props["ids"] == {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    assert props["mode"] == {"enum": ["fast", "slow"], "type": "string", "default": "fast"}
    assert props["note"] == {"type": "string", "description": "free text", "default": ""}
    assert schema["required"] == ["shape", "when", "day", "level", "ids", "frozen"]


def test_arguments_arrive_as_the_annotated_types() -> None:
    tool = Tool.from_function(draw)
    assert tool.validate_arguments(ARGUMENTS) is None
    converted = tool.convert_arguments(ARGUMENTS)
    utc, plus2 = datetime.UTC, datetime.timezone(datetime.timedelta(hours=2))
    assert converted["shape"] == Shape(
        "sq", [Point(1), Point(2, 3, datetime.datetime(2026, 7, 28, 10, tzinfo=utc))]
    )
    assert converted["when"] == datetime.datetime(2026, 7, 28, 12, 30, 0, 500000, tzinfo=plus2)
    assert converted["day"] == datetime.date(2026, 7, 28)
    assert converted["level"] is Level.HIGH
    assert converted["ids"] == {1, 2, 3}
    assert type(converted["ids"]) is set
    assert converted["frozen"] == frozenset({Colour.BLUE})
    assert converted["path"] == (Point(9),)
    assert converted["optional"] is Colour.BLUE
    assert converted["by_name"] == {"start": datetime.date(2026, 1, 1)}
    assert "mode" not in converted  # absent arguments take the Python default
    assert tool.convert_arguments({**ARGUMENTS, "optional": None})["optional"] is None


def test_plain_json_parameters_are_passed_as_they_are() -> None:
    def plain(a: int, b: list[str], c: dict[str, float], d: Sequence[int] = ()) -> None: ...

    tool = Tool.from_function(plain)
    arguments = {"a": 1, "b": ["x"], "c": {"k": 1.5}}
    assert tool.convert_arguments(arguments) == arguments

    def no_int(b: list[str], c: dict[str, float]) -> None: ...

    assert Tool.from_function(no_int).converter is None  # nothing to convert: no copy made


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"when": "2026-07-28T12:30:00"}, "is not a 'date-time'"),  # no offset
        ({"when": "2026-02-30T12:30:00Z"}, "is not a 'date-time'"),  # no such day
        ({"when": "yesterday"}, "is not a 'date-time'"),
        ({"day": "2026-7-28"}, "is not a 'date'"),
        ({"level": 3}, "at 'level'"),
        ({"ids": [1, 1]}, "non-unique"),
        ({"shape": {"name": "sq", "corners": [], "extra": 1}}, "at 'shape'"),
        ({"shape": {"name": "sq", "corners": [{"y": 1}]}}, "'x' is a required property"),
        ({"frozen": ["green"]}, "at 'frozen/0'"),
    ],
)
def test_invalid_values_are_refused_by_the_schema(change: dict[str, Any], fragment: str) -> None:
    problem = Tool.from_function(draw).validate_arguments({**ARGUMENTS, **change})
    assert problem is not None
    assert fragment in problem


def test_a_value_the_type_refuses_is_a_value_error_for_the_model() -> None:
    tool = Tool.from_function(draw)
    arguments = {**ARGUMENTS, "shape": {"name": "", "corners": []}}
    assert tool.validate_arguments(arguments) is None  # the schema cannot say "non-empty"
    with pytest.raises(
        ValueError, match=r"^Invalid arguments for tool 'draw' at 'shape': a shape needs a name$"
    ):
        tool.convert_arguments(arguments)


def test_explicit_input_schema_means_json_values() -> None:
    def f(when: datetime.datetime) -> None: ...

    tool = Tool.from_function(f, input_schema={"type": "object"})
    assert tool.converter is None
    assert tool.convert_arguments({"when": "x"}) == {"when": "x"}


def test_hand_written_schemas_get_the_same_format_checks() -> None:
    tool = Tool(
        "t",
        "",
        {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}},
        lambda at: None,
    )
    assert tool.validate_arguments({"at": "2026-07-28T00:00:00z"}) is None
    assert "is not a 'date-time'" in (tool.validate_arguments({"at": "noon"}) or "")


class Opaque:
    pass


class Weird(enum.Enum):
    A = (1, 2)


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node]


def _bytes(data: bytes) -> None: ...
def _opaque(thing: Opaque) -> None: ...
def _weird_enum(w: Weird) -> None: ...
def _recursive(tree: Node) -> None: ...
def _union(x: datetime.datetime | int) -> None: ...
def _set_of_lists(s: set[Point]) -> None: ...
def _time(t: datetime.time) -> None: ...
def _field(p: Shape, q: Opaque) -> None: ...


@pytest.mark.parametrize(
    ("fn", "where"),
    [
        (_bytes, "_bytes(data)"),
        (_opaque, "_opaque(thing)"),
        (_weird_enum, "_weird_enum(w)"),
        (_recursive, "_recursive(tree).children"),
        (_union, "_union(x)"),
        (_set_of_lists, "_set_of_lists(s)"),
        (_time, "_time(t)"),
        (_field, "_field(q)"),
    ],
)
def test_other_annotations_are_a_type_error_naming_the_parameter(fn: Any, where: str) -> None:
    tools = ToolSet()
    with pytest.raises(TypeError, match="^" + re.escape(where)):
        tools.tool(fn)
    assert len(tools) == 0


def test_bytes_get_a_hint() -> None:
    with pytest.raises(TypeError, match="take a base64 str instead"):
        schema_from_function(_bytes)


def test_an_integral_float_reaches_an_int_parameter_as_an_int() -> None:
    def tick(count: int, every: float, ids: list[int], limit: int | None = None) -> None: ...

    tool = Tool.from_function(tick)
    arguments = {"count": 5.0, "every": 2.0, "ids": [1.0, 2], "limit": 3.0}
    assert tool.validate_arguments(arguments) is None  # JSON Schema: 5.0 is an integer
    converted = tool.convert_arguments(arguments)
    assert converted == {"count": 5, "every": 2.0, "ids": [1, 2], "limit": 3}
    assert [type(converted[k]) for k in ("count", "every", "limit")] == [int, float, int]
    assert [type(i) for i in converted["ids"]] == [int, int]
    assert (
        tool.convert_arguments({"count": 1, "every": 1, "ids": [], "limit": None})["limit"] is None
    )


def test_an_integral_float_in_a_union_is_converted_only_where_only_int_matches() -> None:
    def f(a: int | str, b: int | float) -> None: ...

    converted = Tool.from_function(f).convert_arguments({"a": 5.0, "b": 5.0})
    assert type(converted["a"]) is int
    assert type(converted["b"]) is float  # float is a member: the value stays as sent


def test_a_huge_invalid_value_is_echoed_truncated() -> None:
    def f(count: int, name: str = "") -> None: ...

    tool = Tool.from_function(f)
    problem = tool.validate_arguments({"count": "9" * 1_000_000})
    assert problem is not None
    assert len(problem) < 1_000
    assert "is not of type 'integer'" in problem  # the reason survives the cut
    assert "more characters" in problem
    problem = tool.validate_arguments({"count": 1, "x" * 1_000_000: 1})  # a huge unknown key
    assert problem is not None
    assert len(problem) < 1_000
