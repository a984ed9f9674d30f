"""What a tool's pipeline can put in its result and its progress, over real HTTP.

* Every content type the spec defines ("Tool Result": text, image, audio,
  resource_link, embedded resource) in one result, built with the core's
  constructors and emitted through the runner as ``Result(content=[...])``.
* Explicit progress values (``Progress(progress=..., total=...)``), with the
  spec's strictly-increasing rule still enforced.
* What a tool may return (JSON values plus what orjson encodes natively), the
  same rule for a direct result, ``Result.structured`` and a ``Partial``'s
  data, whatever the client asked for; items that are not values are
  described in progress messages, never crashing the call.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from mcp import Client
from mcp.types import CallToolResult

from flowkit.mcp import (
    audio_content,
    embedded_resource,
    image_content,
    resource_link,
    text_content,
)
from flowkit_http import MCPApp, MCPServer, Partial, Progress, Result

from ._raw import call, initialize, messages, sse_events
from ._sdk import with_client
from ._serving import serving

PNG = b"\x89PNG\r\n\x1a\n-not-really-a-png"
WAV = b"RIFF\x00\x00\x00\x00WAVE-not-really"
BLOB = bytes(range(256))


def make_server() -> MCPServer:
    server = MCPServer("results")

    @server.tool
    async def every_content_type() -> AsyncIterator[Any]:
        """One step, then a result holding one block of each content type."""
        yield Progress("building")
        yield Result(
            text="all of them",
            structured={"blocks": 6},
            content=[
                image_content(PNG, "image/png"),
                audio_content(WAV, "audio/wav", annotations={"audience": ["user"]}),
                resource_link(
                    "file:///data/report.csv",
                    "report.csv",
                    mime_type="text/csv",
                    description="the full report",
                    size=1234,
                ),
                embedded_resource("test://notes", text="some notes", mime_type="text/plain"),
                embedded_resource("test://blob", blob=BLOB, mime_type="application/octet-stream"),
                text_content("the end"),
            ],
        )

    @server.tool
    async def percent() -> AsyncIterator[Any]:
        """0/100, 50/100, 100/100, then a plain item that advances by one."""
        yield Progress("started", total=100, progress=0)
        yield Progress("halfway", progress=50)
        yield Progress("done", progress=100)
        yield "overtime"

    @server.tool
    async def backwards() -> AsyncIterator[Any]:
        """Breaks the strictly-increasing rule."""
        yield Progress(progress=10)
        yield Progress(progress=5)

    @server.tool
    async def returns_object() -> object:
        return object()

    @server.tool
    async def returns_set_in_dict() -> dict[str, Any]:
        return {"tags": {"a", "b"}}

    @server.tool
    async def result_with_set() -> AsyncIterator[Any]:
        yield Result(structured={"tags": {"a"}})

    @server.tool
    async def content_with_bytes() -> AsyncIterator[Any]:
        yield Result(content=[{"type": "image", "data": PNG, "mimeType": "image/png"}])

    @server.tool
    async def partial_with_set() -> AsyncIterator[Any]:
        yield Partial({"tags": {"a"}}, message="tags")
        yield Result(structured={"ok": True})

    @server.tool
    async def returns_native() -> dict[str, Any]:
        return {"point": Point(1, 2), "when": WHEN, "id": ID, "colour": Colour.RED}

    @server.tool
    async def yields_oddities() -> AsyncIterator[Any]:
        yield Odd()
        yield Hostile()
        yield {1, 2}

    return server


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Odd:
    def __repr__(self) -> str:
        return "<Odd thing>"


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


WHEN = datetime.datetime(2026, 7, 28, 12, 0, tzinfo=datetime.UTC)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


async def _sdk_call(name: str) -> tuple[CallToolResult, list[str | None]]:
    """Call ``name`` with the SDK's default client (2026-07-28, no logs asked for)."""
    messages: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message)

    async def body(client: Client) -> CallToolResult:
        return await client.call_tool(name, {}, progress_callback=on_progress)

    with trio.fail_after(20):
        async with serving(MCPApp(make_server())) as base:
            result = await with_client(base + "/mcp", body, mode="auto")
    return result, messages


async def _call(name: str) -> list[dict[str, Any]]:
    async with serving(MCPApp(make_server())) as base, httpx.AsyncClient() as client:
        url = base + "/mcp"
        headers = await initialize(client, url)
        async with client.stream("POST", url, content=call(1, name, {}), headers=headers) as r:
            assert r.status_code == 200
            events = sse_events(await r.aread())
    return messages(events)


async def test_one_result_carries_every_content_type() -> None:
    with trio.fail_after(20):
        sent = await _call("every_content_type")
    result = sent[-1]["result"]
    assert not result.get("isError")
    blocks = result["content"]
    assert [b["type"] for b in blocks] == [
        "text",
        "image",
        "audio",
        "resource_link",
        "resource",
        "resource",
        "text",
        "text",  # the structured content as JSON text, as the spec recommends
    ]
    assert blocks[0] == {"type": "text", "text": "all of them"}
    assert base64.b64decode(blocks[1]["data"]) == PNG
    assert blocks[1]["mimeType"] == "image/png"
    assert base64.b64decode(blocks[2]["data"]) == WAV
    assert blocks[2]["annotations"] == {"audience": ["user"]}
    assert blocks[3] == {
        "type": "resource_link",
        "uri": "file:///data/report.csv",
        "name": "report.csv",
        "mimeType": "text/csv",
        "description": "the full report",
        "size": 1234,
    }
    assert blocks[4]["resource"] == {
        "uri": "test://notes",
        "mimeType": "text/plain",
        "text": "some notes",
    }
    assert base64.b64decode(blocks[5]["resource"]["blob"]) == BLOB
    assert result["structuredContent"] == {"blocks": 6}


async def test_explicit_progress_values() -> None:
    with trio.fail_after(20):
        sent = await _call("percent")
    progress = [m["params"] for m in sent if m.get("method") == "notifications/progress"]
    assert [(p["progress"], p.get("total")) for p in progress] == [
        (0, 100),
        (50, 100),
        (100, 100),
        (101, None),  # a plain item advances by one, past the total: reported without it
    ]
    assert sent[-1]["result"]["structuredContent"] == {"items": 4}


async def test_progress_that_goes_backwards_fails_the_call() -> None:
    with trio.fail_after(20):
        sent = await _call("backwards")
    result = sent[-1]["result"]
    assert result["isError"]
    assert "strictly increase" in result["content"][0]["text"]


@pytest.mark.parametrize(
    "name",
    [
        "returns_object",
        "returns_set_in_dict",
        "result_with_set",
        "content_with_bytes",  # the call used to end with no response at all
        "partial_with_set",
    ],
)
async def test_a_value_that_is_not_json_is_an_error_result(name: str) -> None:
    """Never the value's repr as a success; a Partial's data fails even with no log asked for."""
    result, _ = await _sdk_call(name)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "is not a JSON value" in text, text
    assert "a tool may return JSON types" in text


async def test_what_orjson_encodes_natively_is_returned_as_json() -> None:
    result, _ = await _sdk_call("returns_native")
    assert not result.is_error
    assert result.structured_content == {
        "point": {"x": 1, "y": 2},
        "when": "2026-07-28T12:00:00+00:00",
        "id": str(ID),
        "colour": "red",
    }


async def test_items_that_are_not_values_are_described_without_failing() -> None:
    result, messages = await _sdk_call("yields_oddities")
    assert not result.is_error, result
    assert result.structured_content == {"items": 3}
    assert messages == ["<Odd thing>", "<Hostile>", "{1, 2}"]
