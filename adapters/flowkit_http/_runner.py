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
from functools import partial
from typing import Any

import trio

from flowkit import Pipeline, aclose_shielded, open_pipeline
from flowkit.mcp import (
    InputRequired,
    OutgoingStream,
    Result,
    ToolContext,
    describe_item,
    error_result,
    json_value,
    to_call_result,
    tool_result,
)

from ._items import CloseStream, Partial, Progress, ToolPipeline
from ._logging import log_tool_failure
from ._outbox import Outbox

__all__ = ["run_call"]

_CHUNK = 256


class _Emitter:
    """Maps pipeline items to events on one stream, counting progress.

    ``steps`` counts the items (the default result); ``position`` is the last
    progress value reported, which an explicit ``Progress.progress`` sets and
    every other step advances by 1. A value past the declared ``total`` goes
    out without one: the tool's count proved wrong, and a progress above its
    total would be a lie. ``undelivered`` counts the partial results that had
    no carrier (neither a log nor a progress notification).
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
        self.undelivered = 0
        self.result: Result | None = None

    def item(self, item: Any) -> None:
        stream, outbox = self.stream, self.outbox
        value: float | None = None
        log: bytes | None = None
        partial = False
        if isinstance(item, Progress):  # the common item, tested first
            if item.total is not None:
                self.total = item.total
            message = item.message
            value = item.progress
        elif isinstance(item, Result):
            self.result = item
            return
        elif isinstance(item, Partial):
            partial = True
            if item.total is not None:
                self.total = item.total
            # Checked whether or not a log carries it: a tool that returns
            # something no client could receive fails the same for every client.
            encoded = json_value(item.data, "Partial data")
            message = (
                item.message if item.message is not None else describe_item(item.data, encoded)
            )
            log = stream.log(item.level, item.data, item.logger)
            if log:
                outbox.add("log", log)
        else:
            message = describe_item(item)
        self.steps += 1
        position = self.position = value if value is not None else self.position + 1
        total = self.total
        if total is not None and position > total:
            total = None
        event = stream.progress(position, total, message)
        if event:
            outbox.add("progress", event)
        elif partial and not log:
            self.undelivered += 1

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
        try:
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
        finally:
            # When the emitter fails (progress that goes backwards, say) or
            # the call is cancelled, the tool's generator is closed here,
            # never left to the GC.
            await aclose_shielded(items)

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
            result = to_call_result(self.result)
        elif returned is not None:
            result = to_call_result(returned)
        else:
            result = tool_result(f"{self.steps} items", structured={"items": self.steps})
        return result


async def _run_pipeline(
    produced: ToolPipeline, emitter: _Emitter, opened: Callable[[Pipeline[Any]], None] | None
) -> None:
    """Run a tool's :class:`ToolPipeline` to its end, its items through ``emitter``."""
    if produced.total is not None:
        emitter.total = produced.total
    # The first hop holds a whole chunk: a generator that does not suspend
    # hands over up to _CHUNK items per scheduler trip (one outbox flush, so
    # one socket write, per chunk); one that sleeps between items still has
    # each delivered as soon as it is made.
    async with open_pipeline(
        produced.source, *produced.stages, hop_items=_CHUNK, drain_on_error=True
    ) as pipeline:
        if opened is not None:
            opened(pipeline)
        await emitter.drain(pipeline)


def _input_required(exc: BaseException) -> InputRequired | None:
    """The :class:`InputRequired` that ended the tool, even from inside its pipeline's group."""
    if isinstance(exc, InputRequired):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _input_required(inner)
            if found is not None:
                return found
    return None


def _error_kind(result: Mapping[str, Any], exc: BaseException | None) -> str | None:
    """What went wrong, in a word fit for a metric label or the dashboard.

    Never the message: it may quote the tool's arguments.
    """
    if exc is not None:
        return type(exc).__name__
    return "ToolError" if result.get("isError") else None


async def run_call(
    stream: OutgoingStream,
    fn: Any,
    arguments: Mapping[str, Any],
    outbox: Outbox,
    close_response: Callable[[], Awaitable[None]] | None = None,
    opened: Callable[[Pipeline[Any]], None] | None = None,
    context: ToolContext | None = None,
) -> str | None:
    """Run one tool call to its final event; returns what failed, if anything.

    ``close_response`` is the adapter's hook for :class:`CloseStream`: end the
    HTTP response carrying the call after what was emitted so far, returning
    once it has ended (the call goes on). ``None`` ignores the marker.
    ``opened`` is handed the running :class:`~flowkit.Pipeline` of a
    :class:`ToolPipeline` tool, so its stages' statistics can be read while
    it runs (``/metrics``, ``/dashboard``).

    The return value is ``None`` for a successful result, else the kind of
    failure (an exception's type name, ``"ToolError"`` for a result the tool
    marked ``isError``) -- never its message, which may quote the arguments.

    The arguments are converted to the tool's annotated types first (see
    :meth:`Tool.convert_arguments <flowkit.mcp.Tool.convert_arguments>`); a
    value the type refuses is an ``isError`` result, as invalid arguments are.
    A tool declared with ``thread=True`` is called in a worker thread
    (``trio.to_thread.run_sync``, trio's default limit of 40 at once); what
    it returns is then run like any other tool's.

    ``context`` goes to the tool's :class:`~flowkit.mcp.ToolContext`
    parameter, if it declares one. In the stateless era a tool that awaits
    an answer not yet given ends with :class:`~flowkit.mcp.InputRequired`:
    its ``InputRequiredResult`` is the final message (outcome ``None``).

    A failure of the tool (an exception from it or its pipeline) becomes a
    result with ``isError: true`` naming the error, which the model can read;
    so does a result that breaks the tool's output schema. Cancellation (the
    client's ``notifications/cancelled``, or a disconnect where that is a
    cancel) arrives as ``trio.Cancelled`` from the caller's cancel scope; the
    stream is already marked cancelled by the core and emits nothing more.
    """
    tool = stream.tool
    assert tool is not None
    emitter = _Emitter(stream, outbox, close_response)
    failure: BaseException | None = None
    try:
        try:
            kwargs = tool.convert_arguments(arguments)
        except ValueError as exc:  # the type refused what the schema let through
            result = error_result(str(exc))
        else:
            if tool.context_param is not None:
                kwargs[tool.context_param] = context
            if tool.thread:
                # Abandoned on cancel: a thread cannot be interrupted, so a
                # cancelled call stops waiting and the thread's result is dropped.
                call = partial(fn, **kwargs)
                produced = await trio.to_thread.run_sync(call, abandon_on_cancel=True)
            else:
                produced = fn(**kwargs)
            # What the tool returned is run here, in run_call's own frame: an
            # idle open call waits with one coroutine frame less.
            if inspect.isawaitable(produced):
                produced = await produced
            if isinstance(produced, ToolPipeline):
                await _run_pipeline(produced, emitter, opened)
                produced = None
            elif isinstance(produced, AsyncIterable):
                # A one-stage pipeline, run in the runner's own task (a pump
                # task and hop per open call cost memory and a hand-off per
                # event); run closes the tool's generator, never the GC.
                await emitter.run(produced)
                produced = None
            result = emitter.final(produced)
        final = stream.complete(
            result,
            dropped_logs=outbox.dropped_logs,
            undelivered_partials=emitter.undelivered,
        )
    except Exception as exc:
        if stream.finished:
            raise
        failure = exc
        log_tool_failure(tool.name, exc)
        result = {"isError": True}
        final = stream.fail(exc)
    except BaseException as exc:  # InputRequired, unless Cancelled or worse
        needs = _input_required(exc)
        if needs is None or stream.finished:
            raise
        await outbox.finish(stream.input_required(needs.result))
        return None
    await outbox.finish(final)
    return _error_kind(result, failure)
