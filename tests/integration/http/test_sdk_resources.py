"""The official SDK 2.x client reads resources, gets prompts and completes, in both eras.

A real hypercorn serves an :class:`MCPServer` declaring resources (an async
reader among them), a template, a prompt with arguments and completions; the
client runs once in the 2025-11-25 handshake era (``mode="legacy"``) and once
in the 2026-07-28 stateless era (``mode="auto"`` adopts it). Subscriptions
go through ``resources/subscribe`` and the GET stream in the first, through
``subscriptions/listen`` in the second.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import warnings
from typing import Any

import pytest
import trio
import trio.lowlevel
from mcp import Client, MCPError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import PromptReference, ResourceTemplateReference

from flowkit.mcp import EndpointConfig, image_content
from flowkit_http import MCPServer, create_app

from ._sdk import with_client
from ._serving import serving

PNG = b"\x89PNG\r\n\x1a\n-not-really"
MODES = {"legacy": ("2025-11-25", -32002), "auto": ("2026-07-28", -32602)}


def make_server() -> MCPServer:
    server = MCPServer("resources-test")

    @server.resource("memo://today", mime_type="text/plain", size=11)
    async def today() -> str:
        """Today's memo."""
        await trio.lowlevel.checkpoint()  # an async reader runs on the server's loop
        return "buy coffee!"

    @server.resource("memo://logo", mime_type="image/png")
    def logo() -> bytes:
        return PNG

    @server.resource("memo://days/{day}", mime_type="text/plain", complete={"day": ["mon", "tue"]})
    def day(day: str) -> str:
        """The memo of a day."""
        if day not in ("mon", "tue"):
            raise KeyError(day)
        return f"memo of {day}"

    @server.prompt(complete={"tone": ["friendly", "formal", "funny"]})
    def reply(message: str, tone: str = "friendly") -> list[Any]:
        """Draft a reply."""
        return [f"Reply to {message!r} in a {tone} tone.", image_content(PNG, "image/png")]

    @server.resource("memo://broken")
    def broken() -> str:
        raise RuntimeError("the secret is 1234")

    @server.tool
    def touch(uri: str) -> str:
        """Tell subscribers that a resource changed."""
        server.resources.updated(uri)
        return "touched"

    return server


async def _everything(client: Client) -> dict[str, Any]:
    out: dict[str, Any] = {"version": client.protocol_version}
    out["caps"] = client.server_capabilities
    out["resources"] = await client.list_resources()
    out["templates"] = await client.list_resource_templates()
    out["text"] = await client.read_resource("memo://today")
    out["blob"] = await client.read_resource("memo://logo")
    out["templated"] = await client.read_resource("memo://days/tue")
    try:
        await client.read_resource("memo://days/sun")
    except MCPError as exc:
        out["missing"] = (exc.error.code, exc.error.data)
    out["prompts"] = await client.list_prompts()
    out["prompt"] = await client.get_prompt("reply", {"message": "hi", "tone": "formal"})
    try:
        await client.get_prompt("reply", {})
    except MCPError as exc:
        out["prompt_error"] = exc.error.code
    out["complete_prompt"] = await client.complete(
        PromptReference(type="ref/prompt", name="reply"), {"name": "tone", "value": "f"}
    )
    out["complete_template"] = await client.complete(
        ResourceTemplateReference(type="ref/resource", uri="memo://days/{day}"),
        {"name": "day", "value": "t"},
    )
    return out


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_resources_prompts_and_completion_with_the_sdk_client(mode: str) -> None:
    version, not_found = MODES[mode]
    with trio.fail_after(30):
        async with serving(create_app(make_server())) as url:
            out = await with_client(url + "/mcp", _everything, mode=mode)
    assert out["version"] == version
    assert out["caps"].resources is not None
    assert out["caps"].prompts is not None
    assert out["caps"].completions is not None
    listed = out["resources"].resources
    assert [(r.uri, r.mime_type, r.size) for r in listed] == [
        ("memo://today", "text/plain", 11),
        ("memo://logo", "image/png", None),
        ("memo://broken", None, None),
    ]
    assert [t.uri_template for t in out["templates"].resource_templates] == ["memo://days/{day}"]
    assert out["text"].contents[0].text == "buy coffee!"
    assert base64.b64decode(out["blob"].contents[0].blob) == PNG
    assert out["templated"].contents[0].text == "memo of tue"
    assert out["missing"] == (not_found, {"uri": "memo://days/sun"})
    prompt = out["prompts"].prompts[0]
    assert (prompt.name, [(a.name, a.required) for a in prompt.arguments or ()]) == (
        "reply",
        [("message", True), ("tone", False)],
    )
    messages = out["prompt"].messages
    assert messages[0].content.text == "Reply to 'hi' in a formal tone."
    assert messages[1].content.type == "image"
    assert out["prompt_error"] == -32602
    assert out["complete_prompt"].completion.values == ["friendly", "formal", "funny"]
    assert out["complete_template"].completion.values == ["tue"]


async def test_subscribe_and_updated_on_the_get_stream_2025() -> None:
    updates: list[str] = []
    got = asyncio.Event()  # bound to the client's loop at its first use

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            updates.append(str(message.params.uri))
            got.set()

    async def body(client: Client) -> list[str]:
        with warnings.catch_warnings():  # the 2.x SDK deprecates it: gone in 2026-07-28
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.subscribe_resource("memo://today")
            # The GET stream opens after initialize, in the background: touch until it
            # carries an update.
            while not got.is_set():
                await client.call_tool("touch", {"uri": "memo://logo"})  # not subscribed
                await client.call_tool("touch", {"uri": "memo://today"})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(got.wait(), 0.5)
            await client.unsubscribe_resource("memo://today")
        return updates

    with trio.fail_after(30):
        async with serving(create_app(make_server())) as url:
            seen = await with_client(url + "/mcp", body, mode="legacy", message_handler=on_message)
    assert set(seen) == {"memo://today"}


async def test_listen_resource_subscriptions_2026() -> None:
    async def body(client: Client) -> Any:
        async with client.listen(resource_subscriptions=["memo://today"]) as subscription:
            await client.call_tool("touch", {"uri": "memo://logo"})  # not subscribed
            await client.call_tool("touch", {"uri": "memo://today"})
            async for event in subscription:
                return subscription.honored, event
        return None

    with trio.fail_after(30):
        async with serving(create_app(make_server())) as url:
            honored, event = await with_client(url + "/mcp", body, mode="auto")
    assert list(honored.resource_subscriptions or ()) == ["memo://today"]
    assert "memo://today" in repr(event)


async def test_a_failing_reader_is_logged_and_answered_with_32603(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(client: Client) -> Any:
        with pytest.raises(MCPError) as caught:
            await client.read_resource("memo://broken")
        return caught.value.error

    with trio.fail_after(30):
        async with serving(create_app(make_server())) as url:
            error = await with_client(url + "/mcp", body, mode="legacy")
    assert error.code == -32603
    assert "1234" not in error.message
    [record] = [r for r in caplog.records if r.getMessage() == "resources/read failed"]
    assert record.exc_info is not None
    assert "the secret is 1234" in str(record.exc_info[1])


async def test_prompt_list_changes_reach_a_listen_stream_2026() -> None:
    server = MCPServer("changes", config=EndpointConfig(prompts_list_changed=True))

    @server.prompt()
    def first() -> str:
        """The first prompt."""
        return "one"

    @server.tool
    def add_prompt() -> str:
        """Declare a second prompt."""
        server.prompt(name="second", description="The second prompt.")(lambda: "two")
        return "added"

    async def body(client: Client) -> tuple[Any, list[str]]:
        async with client.listen(prompts_list_changed=True) as subscription:
            await client.call_tool("add_prompt", {})
            async for event in subscription:
                prompts = await client.list_prompts()
                return event, [p.name for p in prompts.prompts]
        return None, []

    with trio.fail_after(30):
        async with serving(create_app(server)) as url:
            event, names = await with_client(url + "/mcp", body, mode="auto")
    assert "prompts" in repr(event).lower()
    assert names == ["first", "second"]
