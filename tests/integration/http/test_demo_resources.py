"""``flowkit serve --demo``'s live resource and prompt, through the official SDK 2.x client.

A real ``flowkit serve --demo`` process: the client reads ``sensor://demo/room``
(the rolling mean the demo's pipeline keeps current), subscribes and gets
``notifications/resources/updated`` (GET stream in 2025-11-25,
``subscriptions/listen`` in 2026-07-28), gets the ``room_report`` prompt (which
embeds the current reading) and completes its ``unit`` argument.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import orjson
import trio
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import PromptReference

from flowkit_http._demo import ROOM

from ._flowkit_serve import running, stop
from ._sdk import with_client


def _reading(read: Any) -> dict[str, Any]:
    [contents] = read.contents
    assert contents.mime_type == "application/json"
    return dict(orjson.loads(contents.text))


async def _handshake_era(client: Client, updated: asyncio.Event) -> dict[str, Any]:
    out: dict[str, Any] = {"caps": client.server_capabilities}
    out["reading"] = _reading(await client.read_resource(ROOM))
    with warnings.catch_warnings():  # the 2.x SDK deprecates it: gone in 2026-07-28
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.subscribe_resource(ROOM)
        await asyncio.wait_for(updated.wait(), 20)  # the demo renews it every 0.5 s
    out["prompt"] = await client.get_prompt("room_report", {"unit": "fahrenheit"})
    out["completed"] = await client.complete(
        PromptReference(type="ref/prompt", name="room_report"), {"name": "unit", "value": "f"}
    )
    return out


async def test_the_demo_serves_a_live_resource_and_a_prompt(tmp_path: Path) -> None:
    updated = asyncio.Event()  # bound to the client's loop at its first use
    uris: list[str] = []

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            uris.append(str(message.params.uri))
            updated.set()

    async def listen(client: Client) -> Any:
        async with client.listen(resource_subscriptions=[ROOM]) as subscription:
            async for event in subscription:
                return event
        raise AssertionError("the listen stream ended")

    with trio.fail_after(60):
        async with running(["--demo", "--port", "0"], tmp_path) as (process, output):
            url = output.decode().split("serving MCP at ")[1].split()[0]
            seen = await with_client(
                url,
                lambda client: _handshake_era(client, updated),
                mode="legacy",
                message_handler=on_message,
            )
            event = await with_client(url, listen, mode="auto")
            assert await stop(process, output) == 0
    caps = seen["caps"]
    assert caps.resources.subscribe is True
    assert caps.prompts is not None
    assert caps.completions is not None
    reading = seen["reading"]
    assert set(reading) == {"celsius", "readings", "window_s"}
    assert 20 < reading["celsius"] < 24
    assert set(uris) == {ROOM}
    text, embedded = seen["prompt"].messages
    assert "°F" in text.content.text
    assert embedded.content.type == "resource"
    assert str(embedded.content.resource.uri) == ROOM
    assert seen["completed"].completion.values == ["fahrenheit"]
    assert ROOM in repr(event)
