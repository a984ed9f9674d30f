"""The operator base class and the chunked send/receive helpers.

An operator is an async callable ``op(receive, send, *, task_status)``: it
owns both channel ends it is given and closes them on every path. Built-in
operators are small objects made by public factory functions
(``buffer(64)``, ``batch(max_size=10, max_delay=0.5)``) so that one object
is one stage with its own :meth:`Operator.statistics`. The contract is
written out in ``docs/operators.md`` and checked by
:func:`flowkit.testing.check_operator`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import trio

from ._channel import FlowReceiveChannel, FlowSendChannel
from ._stats import OperatorStatistics, _Counters
from ._tasks import ungrouped

__all__ = ["Operator"]

InT = TypeVar("InT")
OutT = TypeVar("OutT")
T = TypeVar("T")

#: How many items a built-in operator moves per chunk at most.
CHUNK = 256


class Operator(Generic[InT, OutT]):
    """Base class of the built-in operators.

    Subclasses implement :meth:`_run`; this class enforces the parts of the
    contract every operator shares: both ends are closed on every path,
    ``task_status.started()`` is called once the stage is running, and a
    closed downstream (``BrokenResourceError`` from ``send``) makes the
    stage return normally, which closes its receive end in turn so the
    upstream sees the same: a vanished consumer tears the chain down.
    """

    _kind = "operator"
    #: Capacity of the pipeline hop after this stage when no ``buffer`` sizes
    #: it (``None``: the pipeline's ``hop_items``). Stages whose semantics
    #: depend on seeing downstream busy (lossy buffers, adaptive batching,
    #: keepalive) ask for 1, or a default hop would queue stale items.
    _output_hop: int | None = None

    def __init__(self, *, name: str | None = None) -> None:
        self._counters = _Counters(name or self._kind)
        self._started = False

    @property
    def name(self) -> str:
        return self._counters.name

    def statistics(self) -> OperatorStatistics:
        """A frozen snapshot of this stage's counters."""
        return self._counters.snapshot()

    def _claim(self) -> None:
        """Mark this object as running; one operator object is one stage."""
        if self._started:
            raise RuntimeError(
                f"{self!r} has already run: an operator object is one stage; "
                "call the factory again for another"
            )
        self._started = True

    def __repr__(self) -> str:
        return f"<flowkit {self._kind} {self.name!r}>"

    async def __call__(
        self,
        receive: trio.abc.ReceiveChannel[InT],
        send: trio.abc.SendChannel[OutT],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._claim()
        async with receive, send:
            task_status.started()
            try:
                # A stage's private nursery must not change what callers
                # see: surface one real error with its own type.
                with ungrouped():
                    await self._run(receive, send)
            except trio.BrokenResourceError:
                if not _is_broken(send):
                    raise

    async def _run(
        self, receive: trio.abc.ReceiveChannel[InT], send: trio.abc.SendChannel[OutT]
    ) -> None:
        raise NotImplementedError

    async def _emit(self, send: trio.abc.SendChannel[OutT], values: Sequence[OutT]) -> None:
        """Send ``values`` downstream, counting the time spent blocked."""
        counters = self._counters
        if isinstance(send, FlowSendChannel):
            state = send._state
            sent = 0
            while sent < len(values):
                if len(state.items) < state.max_items:
                    sent += await send.send_some(values[sent:] if sent else values)
                else:
                    before = trio.current_time()
                    try:
                        sent += await send.send_some(values[sent:] if sent else values)
                    finally:
                        counters.send_blocked_seconds += trio.current_time() - before
            return
        for value in values:
            try:
                send.send_nowait(value)  # type: ignore[attr-defined]
            except (trio.WouldBlock, AttributeError):
                before = trio.current_time()
                try:
                    await send.send(value)
                finally:
                    counters.send_blocked_seconds += trio.current_time() - before
            else:
                # Shielded: the value is already sent, so a cancellation
                # here must not make the caller believe it was not.
                await trio.lowlevel.cancel_shielded_checkpoint()


async def receive_some(receive: trio.abc.ReceiveChannel[T], max_items: int = CHUNK) -> list[T]:
    """Wait for one item, then take whatever else is ready, up to ``max_items``.

    Works on any trio receive channel; on a flowkit channel it is one
    scheduler trip per chunk instead of one per item. Raises
    :class:`trio.EndOfChannel` only when nothing at all could be taken.
    """
    if isinstance(receive, FlowReceiveChannel):
        return await receive.receive_some(max_items)
    batch = [await receive.receive()]
    receive_nowait: Any = getattr(receive, "receive_nowait", None)
    if receive_nowait is not None:
        while len(batch) < max_items:
            try:
                batch.append(receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
    return batch


async def receive_until(
    receive: trio.abc.ReceiveChannel[T], deadline: float, max_items: int = CHUNK
) -> list[T] | None:
    """The next chunk (up to ``max_items``), or ``None`` if ``deadline`` passes first.

    Safe because receives are cancel-atomic: a receive the deadline cut
    short took nothing. Raises :class:`trio.EndOfChannel` at the end.
    """
    with trio.move_on_at(deadline):
        return await receive_some(receive, max_items)
    return None


class Lookahead(Generic[T]):
    """What is ready upstream, seen before it is taken.

    On a flowkit channel (any hop inside a pipeline) the ready items stay in
    the channel until :meth:`take`: an operator not ready for them yet (a
    throttle waiting for tokens) leaves them there, so the hop stays full and
    the stage before it sees a busy downstream, as it would if this stage
    were a plain consumer still at work. On any other channel items must be
    received to be seen, so they wait here instead. Either way they count as
    received (``items_in``) only once they have left the channel.
    """

    __slots__ = ("_counters", "_held", "_receive")

    def __init__(self, receive: trio.abc.ReceiveChannel[T], counters: _Counters) -> None:
        self._receive = receive
        self._counters = counters
        self._held: deque[T] = deque()

    async def ready(self) -> Sequence[T]:
        """Wait for at least one item: the ready ones, oldest first, not taken.

        Raises :class:`trio.EndOfChannel` (or ``StreamAborted``) at the end.
        """
        receive = self._receive
        if isinstance(receive, FlowReceiveChannel):
            await receive._wait_ready()
            items = receive._state.items
            if not items:
                receive._raise_end()
            return items
        if not self._held:
            chunk = await receive_some(receive)
            self._received(len(chunk))
            self._held.extend(chunk)
        return self._held

    def take(self, count: int) -> list[T]:
        """Take the first ``count`` items :meth:`ready` showed (never a checkpoint)."""
        receive = self._receive
        if isinstance(receive, FlowReceiveChannel):
            self._received(count)
            return receive._state.take(count)
        held = self._held
        return [held.popleft() for _ in range(count)]

    def discard(self) -> int:
        """Forget what was received but not taken; return how many items that was.

        Only items read off a channel that is not a flowkit one can be held
        here (a flowkit channel keeps them until :meth:`take`); a stage that
        stops early counts them as dropped, since they did leave upstream.
        """
        count = len(self._held)
        self._held.clear()
        return count

    def _received(self, count: int) -> None:
        counters = self._counters
        counters.items_in += count
        counters.set_buffered(counters.items_in - counters.items_out)


def waiting_receivers(send: trio.abc.SendChannel[Any]) -> int | None:
    """How many tasks wait to receive from ``send``'s channel, if knowable."""
    statistics = getattr(send, "statistics", None)
    if statistics is None:
        return None
    value = getattr(statistics(), "tasks_waiting_receive", None)
    return value if isinstance(value, int) else None


def downstream_has_room(send: trio.abc.SendChannel[Any]) -> bool:
    """Whether a send would complete without waiting (best effort)."""
    if isinstance(send, FlowSendChannel):
        return len(send._state.items) < send._state.max_items
    statistics = getattr(send, "statistics", None)
    if statistics is None:
        return True
    stats = statistics()
    used = getattr(stats, "current_buffer_used", 0)
    size = getattr(stats, "max_buffer_size", 0)
    waiting = getattr(stats, "tasks_waiting_receive", 0)
    return bool(used < size or waiting > used)


def _is_broken(send: trio.abc.SendChannel[Any]) -> bool:
    statistics = getattr(send, "statistics", None)
    if statistics is None:
        return True
    return getattr(statistics(), "open_receive_channels", 0) == 0
