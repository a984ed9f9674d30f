"""The tool runner alone, no server: a real core stream, a real outbox, a writer task.

``run_call`` drives a tool to its final event; these tests read what a writer
would write and check what the core was told: each item, the result, a
failure of the tool, a result the core refuses, dropped logs, CloseStream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import trio

from flowkit.mcp import InMemoryEventStore, OutgoingStream, Tool
from flowkit.mcp._levels import LogThreshold
from flowkit_http import CloseStream, Partial, Progress, Result
from flowkit_http._outbox import Outbox, open_outbox
from flowkit_http._runner import run_call


def _stream(tool: Tool, **kw: Any) -> OutgoingStream:
    stream = OutgoingStream(
        kind="call",
        stream_id="1",
        session_id="s",
        request_id=9,
        progress_token="t",
        tool=tool,
        store=InMemoryEventStore(),
        log_threshold=LogThreshold("debug"),
        **kw,
    )
    stream.open()
    return stream


async def _run(
    fn: Callable[..., Any],
    *,
    policy: str = "lossless",
    output_schema: dict[str, Any] | None = None,
    close: Callable[[], Any] | None = None,
    arguments: dict[str, Any] | None = None,
) -> tuple[OutgoingStream, Outbox, list[dict[str, Any]]]:
    tool = Tool.from_function(fn, policy=policy, output_schema=output_schema)  # type: ignore[arg-type]
    stream = _stream(tool)
    outbox = open_outbox(tool.policy, max_events=4, max_logs=2)
    written: list[bytes] = []

    async def writer() -> None:
        while True:
            try:
                written.extend(await outbox.receive_some())
            except trio.EndOfChannel:
                return

    async with trio.open_nursery() as nursery:
        if policy == "lossless":
            nursery.start_soon(writer)
        await run_call(stream, tool.fn, arguments or {}, outbox, close)
        if policy != "lossless":  # the writer comes late: what waited is conflated
            nursery.start_soon(writer)
    messages = [orjson.loads(e.split(b"data: ", 1)[1]) for e in written]
    return stream, outbox, messages


async def test_items_become_progress_and_the_count_is_the_result() -> None:
    async def count() -> AsyncIterator[Any]:
        """Three plain items."""
        for i in range(3):
            yield {"i": i}

    stream, _, messages = await _run(count)
    assert [m["params"]["progress"] for m in messages[:-1]] == [1, 2, 3]
    assert messages[0]["params"]["message"] == '{"i":0}'
    assert messages[-1]["id"] == 9
    assert messages[-1]["result"]["structuredContent"] == {"items": 3}
    assert stream.finished


async def test_progress_partial_and_result_items() -> None:
    async def rich() -> AsyncIterator[Any]:
        """Explicit progress, a partial result with a log, then the result."""
        yield Progress("half", progress=5, total=10)
        yield Partial({"row": 1}, message="row 1")
        yield Result(text="done", structured={"rows": 1})

    _, _, messages = await _run(rich)
    assert messages[0]["params"] == {
        "progressToken": "t",
        "progress": 5,
        "total": 10,
        "message": "half",
    }
    assert messages[1]["method"] == "notifications/message"
    assert messages[1]["params"]["data"] == {"row": 1}
    assert messages[2]["params"]["progress"] == 6
    assert messages[-1]["result"]["structuredContent"] == {"rows": 1}


async def test_a_failing_tool_is_an_error_result_the_model_can_read() -> None:
    async def broken() -> AsyncIterator[int]:
        """Fails after one item."""
        yield 1
        raise ValueError("bad row")

    _, _, messages = await _run(broken)
    result = messages[-1]["result"]
    assert result["isError"] is True
    assert result["content"][0]["text"] == "Tool 'broken' failed: ValueError: bad row"


async def test_a_result_breaking_the_output_schema_is_answered_as_a_failure() -> None:
    async def wrong() -> dict[str, Any]:
        """Returns a string where the schema wants a number."""
        return {"n": "three"}

    schema = {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}
    _, _, messages = await _run(wrong, output_schema=schema)
    result = messages[-1]["result"]
    assert result["isError"] is True
    assert "LocalProtocolError" in result["content"][0]["text"]


async def test_dropped_logs_are_counted_in_the_results_meta() -> None:
    async def chatty() -> AsyncIterator[Partial]:
        """Five logs in a row, for a writer that comes late."""
        for i in range(5):
            yield Partial(i)

    _, outbox, messages = await _run(chatty, policy="conflate")
    assert outbox.statistics().dropped_logs == 3
    assert messages[-1]["result"]["_meta"] == {"dev.flowkit/droppedLogs": 3}


async def test_close_stream_flushes_then_awaits_the_adapters_hook() -> None:
    closed: list[int] = []

    async def polled() -> AsyncIterator[Any]:
        """Two steps, a close, one step."""
        yield 1
        yield 2
        yield CloseStream()
        yield 3

    async def close() -> None:
        closed.append(1)

    _, _, messages = await _run(polled, close=close)
    assert closed == [1]
    assert [m["params"]["progress"] for m in messages[:-1]] == [1, 2, 3]


async def test_a_cancelled_call_emits_nothing_more() -> None:
    started = trio.Event()

    async def slow() -> AsyncIterator[int]:
        """One item, then waits forever."""
        yield 1
        started.set()
        await trio.sleep_forever()

    tool = Tool.from_function(slow)
    stream = _stream(tool)
    outbox = open_outbox("lossless", max_events=4, max_logs=2)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_call, stream, tool.fn, {}, outbox)
            await started.wait()
            stream.cancel()  # what the core does on notifications/cancelled
            scope.cancel()
    assert stream.cancelled
    assert stream.result({"content": []}) == b""


@pytest.mark.parametrize("policy", ["lossless", "conflate"])
async def test_the_final_response_is_never_dropped(policy: str) -> None:
    async def burst() -> AsyncIterator[int]:
        """More items than the outbox holds."""
        for i in range(50):
            yield i

    _, _, messages = await _run(burst, policy=policy)
    assert messages[-1]["result"]["structuredContent"] == {"items": 50}
