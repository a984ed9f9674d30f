"""The tool runner: runs one ``tools/call`` and turns its output into SSE events.

It runs in the server's long-lived nursery, not in the HTTP handler, because
the call must outlive the request that started it (a 2025-era client may drop
its connection and resume). It encodes every event through the call's
:class:`~flowkit.mcp.OutgoingStream`, which files it in the event store, and
hands the bytes to the call's :class:`~flowkit_http._outbox.Outbox`, whose
policy decides what a slow client costs.

Items are consumed a chunk at a time (``receive_some``) and each chunk is
flushed to the outbox once, so a fast pipeline pays one hop per chunk, not
per event. A :class:`~flowkit_http.CloseStream` item flushes what came before
it, then awaits the adapter's ``close_response`` hook.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Any

import orjson
import trio

from flowkit import Pipeline, open_pipeline
from flowkit.mcp import OutgoingStream, tool_result

from ._items import CloseStream, Partial, Progress, Result, ToolPipeline
from ._outbox import Outbox

__all__ = ["run_call", "to_call_result"]

_MESSAGE_LIMIT = 200
_CHUNK = 256


def _describe(item: Any) -> str:
    """A short human-readable rendering of an item for a progress message."""
    if isinstance(item, str):
        text = item
    else:
        try:
            text = orjson.dumps(item, default=str).decode()
        except TypeError:
            text = repr(item)
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def to_call_result(value: Any) -> dict[str, Any]:
    """The ``CallToolResult`` for what a tool returned or emitted as its result.

    * :class:`Result` → its text, content and structured content;
    * a mapping with a ``content`` list → taken as a ready ``CallToolResult``;
    * another mapping → ``structuredContent`` (plus its JSON as text);
    * a string → one text block; ``None`` → no content;
    * anything else JSON-serialisable → its JSON as one text block.
    """
    if isinstance(value, Result):
        blocks: list[Mapping[str, Any]] = []
        if value.text is not None:
            blocks.append({"type": "text", "text": value.text})
        blocks.extend(value.content)
        return tool_result(blocks, structured=value.structured)
    if isinstance(value, Mapping):
        if isinstance(value.get("content"), list):
            return dict(value)
        return tool_result(structured=value)
    if value is None:
        return tool_result()
    if isinstance(value, str):
        return tool_result(value)
    return tool_result(orjson.dumps(value, default=str).decode())


class _Emitter:
    """Maps pipeline items to events on one stream, counting progress.

    ``steps`` counts the items (the default result); ``position`` is the last
    progress value reported, which an explicit ``Progress.progress`` sets and
    every other step advances by 1.
    """

    def __init__(
        self,
        stream: OutgoingStream,
        outbox: Outbox,
        close_response: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.stream = stream
        self.outbox = outbox
        self.total: float | None = None
        self.close_response = close_response
        self.steps = 0
        self.position: float = 0
        self.result: Result | None = None

    def item(self, item: Any) -> None:
        stream, outbox = self.stream, self.outbox
        if isinstance(item, Result):
            self.result = item
            return
        self.steps += 1
        value: float | None = None
        if isinstance(item, Progress):
            if item.total is not None:
                self.total = item.total
            message = item.message
            value = item.progress
        elif isinstance(item, Partial):
            if item.total is not None:
                self.total = item.total
            message = item.message if item.message is not None else _describe(item.data)
            log = stream.log(item.level, item.data, item.logger)
            if log:
                outbox.add("log", log)
        else:
            message = _describe(item)
        self.position = value if value is not None else self.position + 1
        outbox.add("progress", stream.progress(self.position, self.total, message))

    async def close(self) -> None:
        """A :class:`CloseStream`: flush what came before, then end the response."""
        await self.outbox.flush()
        if self.close_response is not None:
            # Returns once the response carrying the call, having written
            # everything before this marker, has ended.
            await self.close_response()

    async def run(self, items: AsyncIterable[Any]) -> None:
        """Drive a plain async iterable in this task: no pump task, no hop.

        Each event goes to the outbox as soon as it is made (``offer``), so a
        tool that sleeps between items has each delivered at once; one that
        does not suspend fills the outbox before the writer runs, so its
        events coalesce into one write per outbox-full, as with a hop. The
        runner waits (``flush``) only when the outbox is full (lossless
        backpressure) and checkpoints every ``_CHUNK`` items.
        """
        outbox = self.outbox
        since = 0
        async for item in items:
            if isinstance(item, CloseStream):
                await self.close()
                since = 0
                continue
            self.item(item)
            since += 1
            if since >= _CHUNK or not outbox.offer():
                await outbox.flush()
                since = 0
        await outbox.flush()

    async def drain(self, pipeline: Pipeline[Any]) -> None:
        """Drive a started pipeline: one outbox flush per chunk received."""
        while True:
            try:
                chunk = await pipeline.receive_some(_CHUNK)
            except trio.EndOfChannel:
                return
            for item in chunk:
                if isinstance(item, CloseStream):
                    await self.close()
                else:
                    self.item(item)
            await self.outbox.flush()

    def final(self, returned: Any) -> dict[str, Any]:
        if self.result is not None:
            return to_call_result(self.result)
        if returned is not None:
            return to_call_result(returned)
        return tool_result(f"{self.steps} items", structured={"items": self.steps})


async def _drive(produced: Any, emitter: _Emitter) -> Any:
    """Run what the tool function returned; returns its direct result, if any."""
    if inspect.isawaitable(produced):
        produced = await produced
    if isinstance(produced, ToolPipeline):
        if produced.total is not None:
            emitter.total = produced.total
        # The first hop holds a whole chunk: a generator that does not suspend
        # hands over up to _CHUNK items per scheduler trip (one outbox flush, so
        # one socket write, per chunk); one that sleeps between items still has
        # each delivered as soon as it is made.
        async with open_pipeline(
            produced.source, *produced.stages, hop_items=_CHUNK, drain_on_error=True
        ) as pipeline:
            await emitter.drain(pipeline)
        return None
    if isinstance(produced, AsyncIterable):
        # A one-stage pipeline, run in the runner's own task (a pump task
        # and hop per open call cost memory and a hand-off per event). When
        # the emitter fails (e.g. progress that goes backwards) or the call
        # is cancelled, the tool's generator is closed here, never left to
        # the GC.
        aclose = getattr(produced, "aclose", None)
        try:
            await emitter.run(produced)
        finally:
            if aclose is not None:
                with trio.CancelScope(shield=True):
                    await aclose()
        return None
    return produced


async def run_call(
    stream: OutgoingStream,
    fn: Any,
    arguments: Mapping[str, Any],
    outbox: Outbox,
    close_response: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run one tool call to its final event.

    ``close_response`` is the adapter's hook for :class:`CloseStream`: end the
    HTTP response carrying the call after what was emitted so far, returning
    once it has ended (the call goes on). ``None`` ignores the marker.

    A failure of the tool (an exception from it or its pipeline) becomes a
    result with ``isError: true`` naming the error, which the model can read;
    so does a result that breaks the tool's output schema. Cancellation (the
    client's ``notifications/cancelled``, or a disconnect where that is a
    cancel) arrives as ``trio.Cancelled`` from the caller's cancel scope; the
    stream is already marked cancelled by the core and emits nothing more.
    """
    emitter = _Emitter(stream, outbox, close_response)
    try:
        returned = await _drive(fn(**arguments), emitter)
        result = emitter.final(returned)
        final = stream.complete(result, dropped_logs=outbox.statistics().dropped_logs)
    except Exception as exc:
        if stream.finished:
            raise
        final = stream.fail(exc)
    await outbox.finish(final)
