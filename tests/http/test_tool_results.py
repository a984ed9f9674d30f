"""What a tool's pipeline can put in its result and its progress, over real HTTP.

* Every content type the spec defines ("Tool Result": text, image, audio,
  resource_link, embedded resource) in one result, built with the core's
  constructors and emitted through the runner as ``Result(content=[...])``.
* Explicit progress values (``Progress(progress=..., total=...)``), with the
  spec's strictly-increasing rule still enforced.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import trio

from flowkit.mcp import (
    audio_content,
    embedded_resource,
    image_content,
    resource_link,
    text_content,
)
from flowkit_http import MCPApp, MCPServer, Progress, Result

from ._raw import call, initialize, messages, sse_events
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

    return server


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
        (101, 100),  # a plain item advances by one; the total sticks
    ]
    assert sent[-1]["result"]["structuredContent"] == {"items": 4}


async def test_progress_that_goes_backwards_fails_the_call() -> None:
    with trio.fail_after(20):
        sent = await _call("backwards")
    result = sent[-1]["result"]
    assert result["isError"]
    assert "strictly increase" in result["content"][0]["text"]
