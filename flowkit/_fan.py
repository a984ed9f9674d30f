"""Fan-in and fan-out: ``merge``, ``broadcast``, ``balance``.

All three are ordinary one-in-one-out operators, so they sit anywhere in a
pipeline and obey the whole operator contract; the extra inputs or outputs
are given to the factory:

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

from collections import deque
from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import trio

from ._channel import FlowSendChannel, open_channel
from ._operator import Operator, _is_broken, receive_some
from ._stats import OperatorStatistics, _Counters
from ._tasks import unwrapped

__all__ = ["Branch", "balance", "branch", "broadcast", "merge"]

T = TypeVar("T")

#: What ``merge`` reads from besides its upstream.
MergeSource: TypeAlias = "trio.abc.ReceiveChannel[T] | AsyncIterable[T]"
Overflow: TypeAlias = Literal["drop_oldest", "drop_newest"]


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
        except BaseExceptionGroup as group:
            error = unwrapped(group)
            raise error from error.__cause__
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
                    aclose = getattr(iterator, "aclose", None)
                    if aclose is not None:
                        with trio.CancelScope(shield=True):
                            await aclose()
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
    """
    return _Merge(sources, name=name)


class Branch(Generic[T]):
    """A :func:`broadcast` output that never holds up the others.

    The branch keeps its own queue of at most ``max_items`` items and a task
    that feeds it to ``send`` as fast as the branch's consumer takes them.
    When the queue is full, the overflow policy decides which item to lose,
    so a slow branch loses items instead of stalling the stream. Make one
    with :func:`branch`; one object is one branch.
    """

    def __init__(
        self,
        send: trio.abc.SendChannel[T],
        max_items: int,
        overflow: Overflow,
        on_drop: Callable[[T], object] | None,
        name: str | None,
    ) -> None:
        if not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"branch max_items must be an int >= 1, got {max_items!r}")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"unknown overflow policy {overflow!r}")
        self.send = send
        self.max_items = max_items
        self.overflow = overflow
        self._on_drop = on_drop
        self._counters = _Counters(name or f"branch[{overflow}]")
        self._queue: deque[T] = deque()
        self._in_flight = 0
        self._wakeup = trio.Event()
        self._ending = False
        self.detached = False
        self._claimed = False

    def statistics(self) -> OperatorStatistics:
        """A snapshot: ``dropped`` counts overflow and items lost on detach."""
        return self._counters.snapshot()

    def _offer(self, chunk: list[T]) -> None:
        """Queue ``chunk`` without ever blocking, dropping on overflow."""
        if self.detached:
            return
        counters = self._counters
        counters.items_in += len(chunk)
        queue = self._queue
        for item in chunk:
            if len(queue) < self.max_items:
                queue.append(item)
                continue
            if self.overflow == "drop_oldest":
                lost = queue.popleft()
                queue.append(item)
            else:
                lost = item
            counters.dropped += 1
            if self._on_drop is not None:
                self._on_drop(lost)
        counters.set_buffered(len(queue) + self._in_flight)
        self._wakeup.set()

    def _abandon(self) -> None:
        """The broadcast stopped early: count what is left as lost."""
        lost = len(self._queue) + self._in_flight
        if lost:
            self._queue.clear()
            self._in_flight = 0
            self._counters.dropped += lost
            self._counters.set_buffered(0)

    def _end(self) -> None:
        """Upstream ended: deliver what is queued, then close."""
        self._ending = True
        self._wakeup.set()

    async def _pump(self, emit: Callable[[trio.abc.SendChannel[T], Sequence[T]], Any]) -> None:
        counters = self._counters
        queue = self._queue
        while True:
            while not queue:
                if self._ending:
                    return
                self._wakeup = trio.Event()
                await self._wakeup.wait()
            # Taken off the queue first, so the overflow policy never evicts
            # an item that is half-way into ``send``: a branch holds at most
            # ``max_items`` queued plus this one.
            item = queue.popleft()
            self._in_flight = 1
            try:
                await emit(self.send, (item,))
            except trio.BrokenResourceError:
                if not _is_broken(self.send):
                    raise
                counters.dropped += 1 + len(queue)
                queue.clear()
                self._in_flight = 0
                counters.set_buffered(0)
                self.detached = True
                return
            self._in_flight = 0
            counters.items_out += 1
            counters.emitted += 1
            counters.set_buffered(len(queue))


def branch(
    send: trio.abc.SendChannel[T],
    *,
    max_items: int,
    overflow: Overflow = "drop_oldest",
    on_drop: Callable[[T], object] | None = None,
    name: str | None = None,
) -> Branch[T]:
    """A :func:`broadcast` branch with a bounded queue and an overflow policy.

    Args:
        send: the branch's channel (owned by the broadcast from then on).
        max_items: queue bound, in items.
        overflow: ``"drop_oldest"`` evicts the oldest queued item for the
            new one (freshest data wins); ``"drop_newest"`` rejects the new
            item.
        on_drop: called with every item lost to overflow.
        name: label for :meth:`Branch.statistics`.
    """
    return Branch(send, max_items, overflow, on_drop, name)


class _Broadcast(Operator[T, T]):
    _kind = "broadcast"

    def __init__(
        self, branches: Sequence[trio.abc.SendChannel[T] | Branch[T]], *, name: str | None
    ) -> None:
        super().__init__(name=name)
        for each in branches:
            if isinstance(each, Branch):
                if each._claimed:
                    raise RuntimeError(f"{each!r} already belongs to a broadcast")
                each._claimed = True
        self._branches = tuple(branches)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        lossless: list[trio.abc.SendChannel[T]] = [send]
        queued: list[Branch[T]] = []
        for each in self._branches:
            if isinstance(each, Branch):
                queued.append(each)
            else:
                lossless.append(each)
        error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                for each in queued:
                    nursery.start_soon(each._pump, self._emit)
                if await self._feed(receive, lossless, queued):
                    for each in queued:
                        each._end()  # flush their queues, then the nursery ends
                else:
                    nursery.cancel_scope.cancel()  # downstream left: stop the branches
            for each in queued:
                each._abandon()  # whatever a branch still holds now is lost
        except BaseExceptionGroup as group:
            error = unwrapped(group)
            raise error from error.__cause__
        except BaseException as caught:
            error = caught
            raise
        finally:
            for out in self._branches:
                _close(out.send if isinstance(out, Branch) else out, error)

    async def _feed(
        self,
        receive: trio.abc.ReceiveChannel[T],
        lossless: list[trio.abc.SendChannel[T]],
        queued: list[Branch[T]],
    ) -> bool:
        """Dispatch until upstream ends (True) or downstream leaves (False)."""
        counters = self._counters
        while True:
            try:
                chunk = await receive_some(receive)
            except trio.EndOfChannel:
                return True
            counters.items_in += len(chunk)
            counters.set_buffered(len(chunk))
            for queue in queued:
                queue._offer(chunk)
            # One lossless output after the other: the slowest sets the pace.
            for out in list(lossless):
                try:
                    await self._emit(out, chunk)
                except trio.BrokenResourceError:
                    if not _is_broken(out):
                        raise
                    if out is lossless[0]:  # the stage's own downstream
                        counters.dropped += len(chunk)
                        counters.set_buffered(0)
                        return False
                    lossless.remove(out)  # a side branch: detach it, go on
                    out.close()  # type: ignore[attr-defined]
            counters.items_out += len(chunk)
            counters.emitted += len(chunk)
            counters.set_buffered(0)


def _close(send: trio.abc.SendChannel[Any], error: BaseException | None) -> None:
    """Close a branch end; on a flowkit channel, say *why* if we failed.

    A plain trio channel can only look finished. A flowkit channel can make
    its receiver raise ``StreamAborted``, so a branch consumer outside the
    pipeline never mistakes a crash for the end of the stream.
    """
    if error is not None and isinstance(send, FlowSendChannel) and not send._closed:
        send._state.end(error)
    send.close()  # type: ignore[attr-defined]


def broadcast(
    *branches: trio.abc.SendChannel[T] | Branch[T], name: str | None = None
) -> Operator[Any, Any]:
    """Send every item downstream and to every branch.

    A branch given as a send channel is *lossless*: each item waits until
    that branch took it, so the slowest lossless consumer sets the pace of
    all. A :class:`Branch` (from :func:`branch`) has a bounded queue and an
    overflow policy instead, so it never holds up the others.

    * closed branch: detached (its ``send`` is closed; a :class:`Branch`
      counts its lost queue as ``dropped``); the others continue.
    * closed downstream (the stage's own ``send``): as for any operator,
      the stage returns normally and closes everything, so upstream sees
      ``BrokenResourceError``; items still queued on branches are lost
      (``dropped``). The pipeline's consumer leaving ends the whole
      pipeline anyway, so the branches cannot outlive it.
    * end: each :class:`Branch` delivers its queue, then every end closes.
    * error: every end is closed; a branch on a flowkit channel gets
      ``StreamAborted`` rather than a clean end.

    Statistics: ``items_out`` counts items handed to every output (queued
    on a :class:`Branch` counts as handed); per-branch drops are in
    :meth:`Branch.statistics`.
    """
    return _Broadcast(branches, name=name)


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
        try:
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
        except BaseExceptionGroup as group:
            error = unwrapped(group)
            raise error from error.__cause__

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
    """
    return _Balance(workers, name=name)
