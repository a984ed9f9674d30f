"""The streaming-native resource on a real server, with the official SDK 2.x client, both eras.

A live resource's pipeline reads a memory channel that a tool (``publish``)
feeds, so the test decides when items arrive. The client subscribes
(``resources/subscribe`` and the GET stream in 2025-11-25,
``subscriptions/listen`` with ``resourceSubscriptions`` in 2026-07-28), gets
``notifications/resources/updated`` for the live URI, and reading it returns
the newest item published. The pacing itself is checked on MockClock in
``tests/flowkit_http/test_live.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from typing import Any

import orjson
import trio
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning

from flowkit_http import MCPServer, create_app

from ._sdk import with_client
from ._serving import serving

URI = "sensor://temperature"


def make_server() -> MCPServer:
    return add_sensor(MCPServer("live-test"))


def add_sensor(server: MCPServer) -> MCPServer:
    """``server`` plus the live resource ``URI`` and the ``publish`` tool feeding it."""
    send, receive = trio.open_memory_channel[float](64)

    @server.live_resource(URI, interval=0.05, mime_type="application/json")
    async def temperature() -> AsyncIterator[dict[str, float]]:
        """The newest reading."""
        async for celsius in receive:
            yield {"celsius": celsius}

    @server.tool
    def publish(celsius: float) -> str:
        """Feed the sensor one reading."""
        send.send_nowait(celsius)
        return "published"

    return server


def _celsius(read: Any) -> float:
    return float(orjson.loads(read.contents[0].text)["celsius"])


async def test_updated_on_the_get_stream_and_read_returns_the_newest_2025() -> None:
    got = asyncio.Event()
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            updates.append(str(message.params.uri))
            got.set()

    async def body(client: Client) -> tuple[float, float, list[str]]:
        await client.call_tool("publish", {"celsius": 20.0})
        first = _celsius(await client.read_resource(URI))
        with warnings.catch_warnings():  # deprecated by the 2.x SDK: gone in 2026-07-28
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.subscribe_resource(URI)
            # The GET stream opens in the background after initialize: publish
            # until an update comes through it.
            celsius = 21.0
            while not got.is_set():
                await client.call_tool("publish", {"celsius": celsius})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(got.wait(), 0.5)
                celsius += 1
            newest = _celsius(await client.read_resource(URI))
            await client.unsubscribe_resource(URI)
        return first, newest, updates

    with trio.fail_after(30):
        async with serving(create_app(make_server())) as url:
            first, newest, seen = await with_client(
                url + "/mcp", body, mode="legacy", message_handler=on_message
            )
    assert first == 20.0
    assert newest >= 21.0  # the newest published, not a queued old one
    assert set(seen) == {URI}


async def test_updated_through_subscriptions_listen_2026() -> None:
    async def body(client: Client) -> tuple[Any, float]:
        async with client.listen(resource_subscriptions=[URI]) as subscription:
            await client.call_tool("publish", {"celsius": 30.0})
            async for event in subscription:
                read = await client.read_resource(URI)
                return event, _celsius(read)
        raise AssertionError("the listen stream ended")

    with trio.fail_after(30):
        async with serving(create_app(make_server())) as url:
            event, celsius = await with_client(url + "/mcp", body, mode="auto")
    assert URI in repr(event)
    assert celsius == 30.0
