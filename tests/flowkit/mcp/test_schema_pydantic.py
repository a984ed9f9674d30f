"""pydantic-model parameters, when pydantic is importable (flowkit does not depend on it).

The model's own JSON Schema is published (its nested models as shared
``$defs`` at the root, where its ``$ref``s point), validated like any schema
(formats included), and the tool receives ``Model.model_validate(value)``.
"""

from __future__ import annotations

import datetime

import pytest

from flowkit.mcp import Tool

pydantic = pytest.importorskip("pydantic")


class Line(pydantic.BaseModel):  # type: ignore[misc,name-defined]
    sku: str
    qty: int = pydantic.Field(1, gt=0)
    due: datetime.datetime | None = None

    @pydantic.field_validator("sku")  # type: ignore[misc]
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if " " in value:
            raise ValueError("a sku has no spaces")
        return value


class Order(pydantic.BaseModel):  # type: ignore[misc,name-defined]
    lines: list[Line]


def order(o: Order, first: Line) -> None: ...


ARGUMENTS = {"o": {"lines": [{"sku": "a", "qty": 2}]}, "first": {"sku": "b"}}


def test_schema_with_shared_definitions() -> None:
    schema = Tool.from_function(order).input_schema
    assert schema["properties"]["o"]["properties"]["lines"]["items"] == {"$ref": "#/$defs/Line"}
    assert schema["properties"]["first"]["properties"]["sku"] == {"title": "Sku", "type": "string"}
    assert set(schema["$defs"]) == {"Line"}


def test_arguments_arrive_as_models() -> None:
    tool = Tool.from_function(order)
    assert tool.validate_arguments(ARGUMENTS) is None
    converted = tool.convert_arguments(ARGUMENTS)
    assert converted["o"] == Order(lines=[Line(sku="a", qty=2)])
    assert converted["first"] == Line(sku="b")


def test_the_schema_refuses_what_it_can_express() -> None:
    tool = Tool.from_function(order)
    bad_qty = {**ARGUMENTS, "first": {"sku": "b", "qty": 0}}
    assert "at 'first/qty'" in (tool.validate_arguments(bad_qty) or "")
    bad_due = {**ARGUMENTS, "first": {"sku": "b", "due": "soon"}}
    assert "is not a 'date-time'" in (tool.validate_arguments(bad_due) or "")


def test_a_validator_refusal_is_a_value_error_for_the_model() -> None:
    tool = Tool.from_function(order)
    arguments = {**ARGUMENTS, "first": {"sku": "b c"}}
    assert tool.validate_arguments(arguments) is None
    with pytest.raises(
        ValueError,
        match=r"^Invalid arguments for tool 'order' at 'first': sku: Value error, a sku has no spaces$",
    ):
        tool.convert_arguments(arguments)
