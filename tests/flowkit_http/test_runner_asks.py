"""The runner ends a stateless-era call with its InputRequiredResult, wherever the tool asks.

A plain async tool, an async generator and a ToolPipeline whose source asks
(its ``InputRequired`` arrives wrapped in the pipeline's exception group; the
pipeline's error path may drop items still in its hops) all end the same
way: what they emitted first, then the ``InputRequiredResult``
as the final message, never an ``isError`` result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import trio

from flowkit.mcp import OutgoingStream, Tool, ToolContext
from flowkit.mcp._replay import Replay, RequestStateSealer
from flowkit_http import Progress, ToolPipeline
from flowkit_http._outbox import open_outbox
from flowkit_http._runner import run_call

FORM = {"type": "object", "properties": {"x": {"type": "string"}}}


async def plain(ctx: ToolContext) -> str:
    await ctx.elicit("x?", FORM, key="x")
    return "never"


async def generator(ctx: ToolContext) -> AsyncIterator[Any]:
    yield Progress("before the question")
    await ctx.elicit("x?", FORM, key="x")
    yield Progress("never")


def pipeline(ctx: ToolContext) -> ToolPipeline:
    async def source() -> AsyncIterator[int]:
        yield 1
        await ctx.elicit("x?", FORM, key="x")
        yield 2

    return ToolPipeline(source())


@pytest.mark.parametrize("fn", [plain, generator, pipeline])
async def test_the_final_message_is_the_input_required_result(fn: Callable[..., Any]) -> None:
    tool = Tool.from_function(fn)
    stream = OutgoingStream(
        kind="call", stream_id="0", request_id=3, progress_token="t", tool=tool, result_type=True
    )
    stream.open()
    sealer = RequestStateSealer((b"k" * 32,), ttl=60, now=lambda: 0.0)
    replay = Replay(sealer, principal=None, digest="d", call_id="c")
    ctx = ToolContext(
        request_id=3,
        call_id="c",
        protocol_version="2026-07-28",
        client_capabilities={"elicitation": {}},
        ask=replay,
    )
    outbox = open_outbox("lossless", max_events=8, max_logs=8)
    written: list[bytes] = []

    async def writer() -> None:
        while True:
            try:
                written.extend(await outbox.receive_some())
            except trio.EndOfChannel:
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        outcome = await run_call(stream, tool.fn, {}, outbox, context=ctx)
    assert outcome is None
    assert stream.finished
    messages = [orjson.loads(event.split(b"data: ", 1)[1]) for event in written]
    final = messages[-1]
    assert final["id"] == 3
    assert final["result"]["resultType"] == "input_required"
    assert list(final["result"]["inputRequests"]) == ["x"]
    assert sealer.open(final["result"]["requestState"]) is not None
    emitted = [m["params"]["progress"] for m in messages[:-1]]
    if fn is generator:  # what came before the question went out before its end
        assert emitted == [1]
    elif fn is plain:
        assert emitted == []
