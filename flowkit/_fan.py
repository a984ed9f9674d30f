"""Fan-in and load balancing: ``merge`` and ``balance``.

Both are ordinary one-in-one-out operators (like ``broadcast``, in
``_broadcast.py``), so they sit anywhere in a pipeline and obey the whole
operator contract; the extra inputs or outputs are given to the factory:

* ``merge(*sources)`` merges its upstream with more sources (Akka's
  ``merge(that)``): ``open_pipeline(rx1, merge(rx2, rx3), ...)``.
* ``broadcast(*branches)`` forwards every item downstream *and* to each
  branch (Akka's ``alsoTo``); a branch is a send channel (lossless) or a
  :class:`Branch` with its own overflow policy.
* ``balance(*workers)`` hands each item to exactly one worker stage,
  whichever is ready first, and merges their outputs downstream (Akka's
  balance + merge "parallel workers" pattern).

Each keeps its internal tasks in its own nursery, so every path (end,
error, cancellation, a closed downstream) closes every end it was given.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import trio

from ._channel import FlowSendChannel, open_channel
from ._operator import Operator, _is_broken, receive_some
from ._tasks import aclose_shielded

__all__ = ["balance", "merge"]

T = TypeVar("T")

#: What ``merge`` reads from besides its upstream.
MergeSource: TypeAlias = "trio.abc.ReceiveChannel[T] | AsyncIterable[T]"


class _Merge(Operator[T, T]):
    _kind = "merge"

    def __init__(self, sources: Sequence[MergeSource[T]], *, name: str | None) -> None:
        super().__init__(name=name)
        self._sources = tuple(sources)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        try:
            async with trio.open_nursery() as nursery:
                for source in (receive, *self._sources):
                    nursery.start_soon(self._forward, source, send, nursery.cancel_scope)
        finally:
            for source in self._sources:  # owned even if its task never ran
                if isinstance(source, trio.abc.ReceiveChannel):
                    source.close()  # type: ignore[attr-defined]

    async def _forward(
        self, source: MergeSource[T], send: trio.abc.SendChannel[T], scope: trio.CancelScope
    ) -> None:
        try:
            if isinstance(source, trio.abc.ReceiveChannel):
                async with source:
                    while True:
                        try:
                            chunk = await receive_some(source)
                        except trio.EndOfChannel:
                            return
                        await self._deliver(send, chunk)
            else:
                iterator = aiter(source)
                try:
                    async for item in iterator:
                        await self._deliver(send, [item])
                finally:
                    await aclose_shielded(iterator)
        except trio.BrokenResourceError:
            if not _is_broken(send):
                raise
            scope.cancel()  # downstream left: stop reading every input

    async def _deliver(self, send: trio.abc.SendChannel[T], chunk: list[T]) -> None:
        counters = self._counters
        counters.items_in += len(chunk)
        counters.set_buffered(counters.items_in - counters.items_out)
        await self._emit(send, chunk)
        counters.items_out += len(chunk)
        counters.emitted += len(chunk)
        counters.set_buffered(counters.items_in - counters.items_out)


def merge(*sources: MergeSource[Any], name: str | None = None) -> Operator[Any, Any]:
    """Merge the upstream with ``sources`` into one stream.

    Each input is read by its own task, chunk by chunk, and items go
    downstream as they come: order is kept per input, not across inputs.
    The merged stream ends when *every* input has ended. ``sources`` are
    receive channels (owned and closed by the stage) or async iterables
    (closed with ``aclose`` when the stage stops).

    To merge channels only, start the pipeline from the first one or from
    an empty source: ``open_pipeline((), merge(rx1, rx2))``.

    * full: each input's task waits on downstream; inputs share it by
      turns of one chunk.
    * error: any input's error (``StreamAborted`` included) cancels the
      other inputs and propagates with its original type.
    * closed downstream: every input is closed, so every producer sees
      ``BrokenResourceError``.

    Statistics: ``items_in``/``items_out`` summed over all inputs.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"merge"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Merge(sources, name=name)


class _Balance(Operator[T, Any]):
    _kind = "balance"

    def __init__(self, workers: Sequence[Callable[..., Any]], *, name: str | None) -> None:
        if not workers:
            raise ValueError("balance() needs at least one worker")
        super().__init__(name=name)
        self._workers = tuple(workers)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[Any]
    ) -> None:
        # Rendezvous: an item leaves only when some worker is ready for it.
        work_send, work_receive = trio.open_memory_channel[T](0)
        results_send: FlowSendChannel[Any]
        results_send, results_receive = open_channel(len(self._workers))
        async with trio.open_nursery() as nursery:
            async with work_receive, results_send:
                for worker in self._workers:
                    nursery.start_soon(worker, work_receive.clone(), results_send.clone())
            nursery.start_soon(self._distribute, receive, work_send)
            try:
                await self._collect(results_receive, send)
            except trio.BrokenResourceError:
                if not _is_broken(send):
                    raise
                nursery.cancel_scope.cancel()

    async def _distribute(
        self, receive: trio.abc.ReceiveChannel[T], work: trio.MemorySendChannel[T]
    ) -> None:
        counters = self._counters
        async with work:
            while True:
                try:
                    chunk = await receive_some(receive, len(self._workers))
                except trio.EndOfChannel:
                    return
                counters.items_in += len(chunk)
                counters.set_buffered(counters.items_in - counters.items_out)
                for item in chunk:
                    try:
                        await work.send(item)
                    except trio.BrokenResourceError:
                        # Every worker has closed its input: nobody wants
                        # more, so stop reading (upstream sees that).
                        counters.dropped += counters.items_in - counters.items_out
                        counters.set_buffered(0)
                        return
                    counters.items_out += 1
                    counters.set_buffered(counters.items_in - counters.items_out)

    async def _collect(
        self, results: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[Any]
    ) -> None:
        async with results:
            while True:
                try:
                    chunk = await receive_some(results)
                except trio.EndOfChannel:
                    return
                await self._emit(send, chunk)
                self._counters.emitted += len(chunk)


def balance(*workers: Callable[..., Any], name: str | None = None) -> Operator[Any, Any]:
    """Hand each item to exactly one of ``workers``; merge what they emit.

    Each worker is a stage (an operator, or any ``async def (receive, send)``
    following the contract) run on a clone of one rendezvous channel, so an
    item goes to whichever worker asks first: a busy worker is skipped, none
    gets an item twice, none is lost. Their outputs are merged downstream
    (order across workers is not kept).

    * full: when every worker is busy the stage stops reading upstream.
    * end: the workers see the end, flush, and the stage ends after all of
      them have.
    * error: a worker's error (or upstream's ``StreamAborted``) cancels the
      others and propagates with its original type.
    * closed downstream: the workers are cancelled and upstream sees
      ``BrokenResourceError``. If every worker closes its input, the stage
      stops reading upstream too.

    Statistics: ``items_out`` counts items handed to a worker, ``emitted``
    the values forwarded from the workers; each worker keeps its own.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"balance"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Balance(workers, name=name)
