"""Pipelines: a source and a list of stages, run as a chain of trio tasks.

The runner does three things a hand-written chain of tasks would not:

* **Fusion.** Runs of adjacent fusible stages (``map``/``filter`` with sync
  functions) share one task and work on whole chunks; fusible stages right
  after a source run in the source's pump, and those at the very end run in
  the consumer's own task when it pulls.
* **Chunked hops.** Tasks are joined by flowkit channels that move lists of
  items in one scheduler trip while bounding their content in items. A
  ``buffer(n)`` stage becomes the capacity of the hop it sits on.
* **Honest ends.** A hop's end is delivered only when the task feeding it
  returned normally; if it raised, the consumer gets
  :class:`~flowkit.StreamAborted` and the pipeline re-raises the *original*
  exception, so a crash never looks like completion.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeAlias, TypeVar

import trio

from ._acks import AckTracker, PipelineView, check_stage
from ._buffers import _Buffer
from ._channel import FlowReceiveChannel, FlowSendChannel, _open_stage_channel
from ._exceptions import StreamAborted
from ._operator import CHUNK, Operator, receive_some
from ._stats import OperatorStatistics
from ._tasks import _leaves, aclose_shielded, ungrouped, unwrapped
from ._transform import _ChunkFailed, _Fusible, _run_chunk

__all__ = ["Pipeline", "Stage", "open_pipeline", "start_pipeline"]

T = TypeVar("T")

#: A stage: ``await stage(receive, send, task_status=...)``.
Stage: TypeAlias = Callable[..., Awaitable[None]]
#: What a pipeline can read from.
Source: TypeAlias = "trio.abc.ReceiveChannel[Any] | AsyncIterable[Any] | Iterable[Any]"

#: Capacity, in items, of a hop between two tasks that no ``buffer`` sizes.
DEFAULT_HOP_ITEMS = 16


class Pipeline(trio.abc.ReceiveChannel[T], Generic[T]):
    """The running pipeline's output, plus per-stage statistics.

    It is a :class:`trio.abc.ReceiveChannel`; ``async for item in pipeline``
    takes a whole ready chunk (at most ``CHUNK`` items) and checkpoints once
    per chunk rather than once per item, which is what lets a consumer keep
    up with a fused chain. ``receive()`` takes exactly one item.
    :meth:`receive_some` hands over whole chunks.
    """

    def __init__(
        self,
        output: trio.abc.ReceiveChannel[Any],
        tail: Sequence[_Fusible[Any, Any]],
        stages: Sequence[object],
    ) -> None:
        self._output = output
        self._apply_tail = _Fused(tail)._apply
        self._local: deque[T] = deque()
        #: A trailing fused stage's error, raised once the items that
        #: preceded it in its chunk have been handed out.
        self._failed: Exception | None = None
        #: Whether the consumer has seen the end (an acked pipeline that
        #: ended any other way settles nothing more).
        self._ended = False
        self.stages: tuple[object, ...] = tuple(stages)

    def statistics(self) -> tuple[OperatorStatistics, ...]:
        """One snapshot per stage that keeps statistics, in pipeline order."""
        return tuple(stage.statistics() for stage in self.stages if isinstance(stage, Operator))

    async def receive_some(self, max_items: int = CHUNK) -> list[T]:
        """Wait for at least one item, then return up to ``max_items`` ready ones."""
        if self._local:
            n = min(max_items, len(self._local))
            batch = [self._local.popleft() for _ in range(n)]
            await trio.lowlevel.checkpoint()
            return batch
        while True:
            if self._failed is not None:
                error, self._failed = self._failed, None
                raise error
            try:
                taken = await receive_some(self._output, max_items)
            except trio.EndOfChannel:
                self._ended = True
                raise
            chunk, self._failed = _run_chunk(self._apply_tail, taken)
            if chunk:
                return chunk

    async def receive(self) -> T:
        if not self._local:
            return (await self.receive_some(1))[0]
        await trio.lowlevel.checkpoint()
        return self._local.popleft()

    def __aiter__(self) -> Pipeline[T]:
        return self

    async def __anext__(self) -> T:
        local = self._local
        if local:
            return local.popleft()
        try:
            local.extend(await self.receive_some())
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        return local.popleft()

    def close(self) -> None:
        """Stop consuming: upstream stages see a closed downstream and wind down."""
        self._output.close()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self._output.aclose()


def start_pipeline(
    nursery: trio.Nursery,
    source: Source,
    *stages: Stage,
    hop_items: int = DEFAULT_HOP_ITEMS,
) -> Pipeline[Any]:
    """Start a pipeline's tasks in a nursery the caller owns.

    For long-lived owners (a server's lifespan nursery) whose pipelines must
    outlive the function that started them. An exception in any stage
    propagates into ``nursery`` with its original type; consumers of the
    returned :class:`Pipeline` see :class:`StreamAborted`, never a clean end.

    Args:
        nursery: where the stage tasks run.
        source: a receive channel, an async iterable or a sync iterable.
        *stages: operators (``await stage(receive, send, task_status=...)``).
        hop_items: capacity of each hop between tasks not sized by a buffer.

    Raises:
        TypeError: ``source`` acknowledges its items (it has an
            :class:`~flowkit.AckTracker`): only ``open_pipeline`` knows how
            its pipeline ended, which settling needs.
    """
    if isinstance(getattr(source, "acks", None), AckTracker):
        raise TypeError("a source with an AckTracker runs in open_pipeline, not start_pipeline")
    return _start(nursery, source, stages, hop_items, failures=None)


def _start(
    nursery: trio.Nursery,
    source: Source,
    stages: Sequence[Stage],
    hop_items: int,
    *,
    failures: list[BaseException] | None,
    hops: list[Any] | None = None,
) -> Pipeline[Any]:
    """Build the chain; with ``failures``, stage errors are collected there.

    With ``hops``, the state of every hop between tasks is appended to it
    (for an :class:`~flowkit.AckTracker` to see what they hold).
    """
    stage_list = list(stages)
    for stage in stage_list:
        if not callable(stage):
            raise TypeError(f"pipeline stage {stage!r} is not callable")
        if isinstance(stage, _Fusible):
            stage._claim()  # fused stages never run their own __call__
    # Trailing fusible stages run in the consumer's task.
    tail: list[_Fusible[Any, Any]] = []
    while stage_list and isinstance(last := stage_list[-1], _Fusible):
        tail.insert(0, last)
        stage_list.pop()

    # A failure upstream of the last ``recover`` stage is handed over to it:
    # the failing task aborts its hop but does not fail the pipeline.
    last_recover = max(
        (i for i, stage in enumerate(stage_list) if getattr(stage, "_takes_failures", False)),
        default=-1,
    )
    upstream: trio.abc.ReceiveChannel[Any]
    index = 0
    if isinstance(source, trio.abc.ReceiveChannel):
        upstream = source
    else:
        head: list[_Fusible[Any, Any]] = []
        while index < len(stage_list) and isinstance(stage_list[index], _Fusible):
            head.append(stage_list[index])  # type: ignore[arg-type]
            index += 1
        capacity, index = _hop_capacity(stage_list, index, hop_items)
        send, upstream = _open_stage_channel(capacity)
        if hops is not None:
            hops.append(send._state)
        _bind_buffers(stage_list, index, send)
        nursery.start_soon(
            _run_task, _pump, (source, head), send, failures, last_recover >= len(head)
        )

    while index < len(stage_list):
        stage = stage_list[index]
        group: list[Any]
        if isinstance(stage, _Fusible):
            group = []
            while index < len(stage_list) and isinstance(stage_list[index], _Fusible):
                group.append(stage_list[index])
                index += 1
            runner: Stage = _Fused(group)
        else:
            runner = stage
            index += 1
        handed_over = last_recover >= index
        capacity, index = _hop_capacity(stage_list, index, hop_items)
        send, receive = _open_stage_channel(capacity)
        if hops is not None:
            hops.append(send._state)
        _bind_buffers(stage_list, index, send)
        nursery.start_soon(_run_task, runner, upstream, send, failures, handed_over)
        upstream = receive
    return Pipeline(upstream, tail, stages)


@asynccontextmanager
async def open_pipeline(
    source: Source,
    *stages: Stage,
    hop_items: int = DEFAULT_HOP_ITEMS,
    drain_on_error: bool = False,
    acks: AckTracker[Any] | None = None,
) -> AsyncIterator[Pipeline[Any]]:
    """Run a pipeline for the duration of an ``async with`` block.

    Yields the :class:`Pipeline` (the output channel). Leaving the block
    stops the pipeline. An exception from any stage surfaces here with its
    original type (not wrapped in an exception group).

    By default a failure overtakes the items still in flight (as in Akka
    Streams): the block is cancelled at once and raises the error. With
    ``drain_on_error=True`` the failure travels *behind* the items instead:
    the consumer first receives every item that got past the failure point,
    then :class:`StreamAborted`, and the block raises the original error when
    it ends. Use it when partial results matter (a tool reporting progress
    up to its failure) and the body reads until the end; a body that stops
    reading sees the error only when it leaves the block.

    Args:
        source: a receive channel, an async iterable or a sync iterable.
        *stages: operators (``await stage(receive, send, task_status=...)``).
        hop_items: capacity of each hop between tasks not sized by a buffer.
        drain_on_error: deliver what preceded a failure before raising it.
        acks: settle the source's items through this tracker only once the
            pipeline is done with them (see :class:`~flowkit.AckTracker`);
            by default the source's own ``acks`` attribute, if it has one.
            Every stage must then keep ``statistics()``
            (:class:`~flowkit.ContractViolation` otherwise).

    Example::

        async with flowkit.open_pipeline(range(10), flowkit.map(str)) as out:
            async for item in out:
                print(item)
    """
    failures: list[BaseException] = []
    body_error: BaseException | None = None
    if acks is None and isinstance(found := getattr(source, "acks", None), AckTracker):
        acks = found
    hops: list[Any] | None = None
    if acks is not None:
        for stage in stages:
            check_stage(stage)
        hops = []
    ended: Callable[[bool], None] | None = None
    try:
        async with trio.open_nursery() as nursery:
            pipeline = _start(
                nursery,
                source,
                stages,
                hop_items,
                failures=failures if drain_on_error else None,
                hops=hops,
            )
            if acks is not None and hops is not None:
                ended = _bind_acks(acks, pipeline, hops, source)
            try:
                yield pipeline
            finally:
                if ended is not None:
                    ended(pipeline._ended and not failures)
                pipeline.close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        body_error = _unwrap(group)
        if body_error is group:
            raise
    if failures and (body_error is None or isinstance(body_error, StreamAborted)):
        body_error = failures[0]
    if body_error is not None:
        raise body_error from body_error.__cause__


def _bind_acks(
    acks: AckTracker[Any], pipeline: Pipeline[Any], hops: list[Any], source: Source
) -> Callable[[bool], None]:
    """Show ``acks`` what the pipeline holds; look for settle points on every hop."""
    channel = source if isinstance(source, trio.abc.ReceiveChannel) else None
    view = PipelineView(pipeline.stages, hops, pipeline._local, channel)
    for state in hops:
        state.on_wait = acks.check
    if isinstance(channel, FlowReceiveChannel):
        channel._state.on_wait = acks.check
    return acks._bind(view)


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The original error to raise for ``group`` (never a group unless cancelled).

    ``StreamAborted`` leaves are echoes of a failure that is in the group
    too; among the real errors the first wins (see :func:`unwrapped`).
    """
    _, rest = group.split((StreamAborted, trio.Cancelled))
    if rest is None:
        cancelled, _ = group.split(trio.Cancelled)
        if cancelled is not None:
            return group
        leaves = list(_leaves(group))
        cause = leaves[0].__cause__ if leaves else None
        return cause if cause is not None else group
    return unwrapped(rest)


def _hop_capacity(stages: list[Any], index: int, default: int) -> tuple[int, int]:
    """The capacity of the hop before ``stages[index]``, and the next index.

    Adjacent ``buffer`` stages at ``index`` add up into the hop; otherwise
    the stage before the hop may ask for its own size (``_output_hop``), or
    else the stage after it (``_input_hop``).
    """
    total = 0
    while index < len(stages) and isinstance(stages[index], _Buffer):
        total += stages[index].max_items
        index += 1
    if total:
        return total, index
    wanted = getattr(stages[index - 1], "_output_hop", None) if index > 0 else None
    if wanted is None and index < len(stages):
        # A stage that works on whole chunks (a sink writing one round trip
        # per chunk) may ask for a hop holding one chunk in front of it.
        wanted = getattr(stages[index], "_input_hop", None)
    return (wanted or default), index


def _bind_buffers(stages: list[Any], end: int, send: FlowSendChannel[Any]) -> None:
    index = end - 1
    while index >= 0 and isinstance(stages[index], _Buffer):
        stages[index]._bind(send)
        index -= 1


async def _run_task(
    runner: Callable[..., Awaitable[None]],
    upstream: Any,
    send: FlowSendChannel[Any],
    failures: list[BaseException] | None,
    handed_over: bool = False,
) -> None:
    """Run one task of the chain and deliver its end honestly.

    On an error the hop is aborted, so downstream drains what the task sent
    and then gets :class:`StreamAborted` carrying the original error. With
    ``failures`` (``open_pipeline``), the error is collected rather than
    raised into the nursery, so the consumer is not cancelled before it has
    received the items that preceded the failure; a stage's
    ``StreamAborted`` is only the echo of an upstream failure already there.
    With ``handed_over`` (a ``recover`` stage is downstream and still
    reading), the error is neither raised nor collected: it travels down
    the hops to the ``recover`` stage, which ends cleanly or raises it.
    """
    try:
        with ungrouped():  # a hand-written stage's nursery keeps the promise too
            await runner(upstream, send)
    except Exception as error:
        original: BaseException = error
        while isinstance(original, StreamAborted) and original.__cause__ is not None:
            original = original.__cause__
        send._abort(original)
        if handed_over and send.statistics().open_receive_channels:
            return
        if failures is None:
            raise
        if not isinstance(error, StreamAborted):
            failures.append(error)
    except BaseException as error:
        send._abort(error)
        raise
    else:
        send._finish()


class _Fused(_Fusible[Any, Any]):
    """Several fusible stages sharing one task; each keeps its own counters."""

    _kind = "fused"

    def __init__(self, stages: Sequence[_Fusible[Any, Any]]) -> None:
        super().__init__(name="+".join(stage.name for stage in stages))
        self._stages = tuple(stages)

    def _apply(self, chunk: list[Any]) -> list[Any]:
        error: Exception | None = None
        for stage in self._stages:
            # After a failure the later stages still get the outputs that
            # preceded it; if one of them fails too, its failure came first
            # in item order, so it is the one raised.
            chunk, failed = _run_chunk(stage._apply, chunk)
            if failed is not None:
                error = failed
        if error is not None:
            raise _ChunkFailed(chunk, error)
        return chunk


def _no_stages(chunk: list[Any]) -> list[Any]:
    return chunk


async def _pump(
    spec: tuple[AsyncIterable[Any] | Iterable[Any], list[_Fusible[Any, Any]]],
    send: FlowSendChannel[Any],
) -> None:
    """Feed a (sync or async) iterable into the first hop, chunk by chunk."""
    source, head = spec
    apply = _Fused(head)._apply if head else _no_stages
    try:
        if isinstance(source, AsyncIterable):
            await _pump_async(source, apply, send)
        else:
            iterator = iter(source)
            while chunk := list(itertools.islice(iterator, CHUNK)):
                out, error = _run_chunk(apply, chunk)
                await send.send_all(out)
                if error is not None:
                    raise error
    except trio.BrokenResourceError:
        return  # the consumer left: stop reading the source
    finally:
        send.close()


async def _pump_async(
    source: AsyncIterable[Any],
    apply: Callable[[list[Any]], list[Any]],
    send: FlowSendChannel[Any],
) -> None:
    """Feed an async iterable in, without a scheduler trip per item.

    An item goes into the hop at once while there is room (the consumer is
    woken and sees it immediately: no added latency), but the pump yields to
    the scheduler only every ``CHUNK`` items or when the hop is full. An
    async generator that never suspends therefore hands over chunks, not
    single items, while one that sleeps between items still delivers each as
    soon as it is made.
    """
    iterator = aiter(source)
    since_checkpoint = 0
    try:
        if apply is _no_stages:  # nothing fused into the pump: no list per item
            async for item in iterator:
                try:
                    send.send_nowait(item)
                except trio.WouldBlock:
                    await send.send(item)
                    since_checkpoint = 0
                    continue
                since_checkpoint += 1
                if since_checkpoint >= CHUNK:
                    since_checkpoint = 0
                    await trio.lowlevel.checkpoint()
            return
        async for item in iterator:
            out, error = _run_chunk(apply, [item])
            for value in out:
                try:
                    send.send_nowait(value)
                except trio.WouldBlock:
                    await send.send(value)
                    since_checkpoint = 0
                else:
                    since_checkpoint += 1
            if error is not None:
                raise error
            if since_checkpoint >= CHUNK:
                since_checkpoint = 0
                await trio.lowlevel.checkpoint()
    finally:
        await aclose_shielded(iterator)
