"""Fan-out to every branch: ``broadcast`` and its lossy ``branch``.

``broadcast(*branches)`` forwards every item downstream *and* to each
branch (Akka's ``alsoTo``). A plain send channel is a lossless branch: the
slowest consumer governs, as with any backpressure. A :class:`Branch` made
by :func:`branch` has its own bounded queue and overflow policy, so one slow
branch can shed items instead of stalling the rest. A branch that closes is
detached; the others go on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import trio

from ._channel import FlowSendChannel
from ._checks import check_count
from ._operator import Operator, _is_broken, receive_some
from ._stats import OperatorStatistics, _Counters
from ._tasks import ungrouped

__all__ = ["Branch", "branch", "broadcast"]

T = TypeVar("T")

Overflow: TypeAlias = Literal["drop_oldest", "drop_newest"]


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
        check_count(max_items, "branch max_items")
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
        name: the branch's label in :meth:`Branch.statistics` (default
            ``"branch[<overflow>]"``, such as ``"branch[drop_oldest]"``).
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

    def _acks_held(self) -> int:
        """Items queued on :class:`Branch` outputs (an acked pipeline counts them as held)."""
        return sum(b._counters.buffered for b in self._branches if isinstance(b, Branch))

    def _acks_branches(self) -> list[object]:
        """The channel states the branches feed: an acked pipeline needs them bound too."""
        return [
            getattr(b.send if isinstance(b, Branch) else b, "_state", None) for b in self._branches
        ]

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
            with ungrouped():
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

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"broadcast"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Broadcast(branches, name=name)
