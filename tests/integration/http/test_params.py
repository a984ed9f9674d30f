"""Typed parameters over real HTTP: the tool receives the annotated types.

A tool taking a dataclass, an ``Enum``, a ``datetime`` and a ``set`` is called
by the official SDK client with plain JSON; it reports what it received. A
date-time without its offset and a value the dataclass refuses are ``isError``
results the model can read, in both eras.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any

import pytest
import trio
from mcp import Client
from mcp.types import CallToolResult

from flowkit_http import MCPApp, MCPServer

from ._sdk import with_client
from ._serving import serving


class Unit(enum.Enum):
    METRIC = "metric"
    IMPERIAL = "imperial"


@dataclasses.dataclass(frozen=True)
class Window:
    start: datetime.datetime
    hours: int = 1

    def __post_init__(self) -> None:
        if self.hours <= 0:
            raise ValueError("hours must be positive")


def make_server() -> MCPServer:
    server = MCPServer("params")

    @server.tool
    async def forecast(window: Window, unit: Unit, stations: set[int]) -> dict[str, Any]:
        """Report the types the arguments arrived as."""
        return {
            "window": type(window).__name__,
            "start": type(window.start).__name__,
            "aware": window.start.tzinfo is not None,
            "unit": repr(unit),
            "stations": sorted(stations),
            "stations_type": type(stations).__name__,
        }

    return server


async def _call(mode: str, arguments: dict[str, Any]) -> CallToolResult:
    async def body(client: Client) -> CallToolResult:
        return await client.call_tool("forecast", arguments)

    with trio.fail_after(20):
        async with serving(MCPApp(make_server())) as base:
            return await with_client(base + "/mcp", body, mode=mode)


GOOD = {
    "window": {"start": "2026-07-28T06:00:00Z", "hours": 12},
    "unit": "metric",
    "stations": [7, 3, 7000],
}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_arguments_arrive_as_the_annotated_types(mode: str) -> None:
    result = await _call(mode, GOOD)
    assert not result.is_error, result
    assert result.structured_content == {
        "window": "Window",
        "start": "datetime",
        "aware": True,
        "unit": "<Unit.METRIC: 'metric'>",
        "stations": [3, 7, 7000],
        "stations_type": "set",
    }


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"window": {"start": "2026-07-28T06:00:00"}}, "is not a 'date-time'"),
        ({"window": {"start": "2026-07-28T06:00:00Z", "hours": 0}}, "hours must be positive"),
        ({"unit": "kelvin"}, "at 'unit'"),
        ({"stations": [1, 1]}, "non-unique"),
    ],
)
async def test_refused_values_are_error_results(
    mode: str, change: dict[str, Any], fragment: str
) -> None:
    result = await _call(mode, {**GOOD, **change})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("Invalid arguments for tool 'forecast'"), text
    assert fragment in text, text
