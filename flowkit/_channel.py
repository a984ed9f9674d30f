"""Item-bounded channels that move items in chunks.

One trio memory-channel hop costs a few microseconds per item, because every
``send`` and ``receive`` is a trip through the scheduler. flowkit channels
keep trio's semantics for single items (they implement
:class:`trio.abc.SendChannel` / :class:`trio.abc.ReceiveChannel`, so any
operator written against trio works with them) and add chunked transfer:
:meth:`FlowSendChannel.send_some` accepts as many items as fit and
:meth:`FlowReceiveChannel.receive_some` takes everything ready, each costing
one scheduler trip per *chunk*. The bound is always counted in items, never
in chunks.

Both chunked calls are cancel-atomic in the way a socket is: if cancelled
while waiting nothing was transferred; once they return, the returned count
(or list) is exactly what moved. Timed receives (``move_on_after`` around
``receive``) therefore never lose an item.

Inside a pipeline the send end's close is *deferred*: the consumer sees the
end of the stream only once the stage that produced it has returned
normally. If the stage raised instead, the receiver gets
:class:`~flowkit.StreamAborted` after the items already buffered, so a crash
is never mistaken for completion.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import attrs
import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from ._checks import check_count
from ._exceptions import StreamAborted
from ._lot import Lot

__all__ = ["ChannelStatistics", "FlowReceiveChannel", "FlowSendChannel", "open_channel"]

T = TypeVar("T")

_NO_ITEMS: tuple[()] = ()  # a channel's items while it holds none


@attrs.frozen
class ChannelStatistics:
    """A snapshot of one channel's state (shared by all its clones)."""

    current_buffer_used: int
    max_buffer_size: float
    peak_buffer_used: int
    open_send_channels: int
    open_receive_channels: int
    tasks_waiting_send: int
    tasks_waiting_receive: int
    items_sent: int
    items_received: int
    send_blocked_seconds: float


class _State(Generic[T]):
    __slots__ = (
        "defer_end",
        "error",
        "finished",
        "items",
        "items_received",
        "items_sent",
        "max_items",
        "on_wait",
        "open_receivers",
        "open_senders",
        "peak",
        "receive_lot",
        "send_blocked_seconds",
        "send_lot",
    )

    def __init__(self, max_items: float, defer_end: bool) -> None:
        self.max_items = max_items
        # No deque while empty (see take), no lots until someone waits: an
        # idle channel is one small object (thousands of open calls each
        # hold one).
        self.items: deque[T] | tuple[()] = _NO_ITEMS
        self.open_senders = 1
        self.open_receivers = 1
        self.defer_end = defer_end
        self.finished = False
        self.error: BaseException | None = None
        self.send_lot: Lot | None = None
        self.receive_lot: Lot | None = None
        self.peak = 0
        self.items_sent = 0
        self.items_received = 0
        self.send_blocked_seconds = 0.0
        #: Called when a receiver is about to park on this empty channel (an
        #: acked pipeline looks for a settle point there; see ``_acks``).
        self.on_wait: Callable[[], None] | None = None

    def put(self, batch: Sequence[T]) -> None:
        items = self.items
        if not isinstance(items, deque):
            items = self.items = deque(batch)
        else:
            items.extend(batch)
        n = len(batch)
        self.items_sent += n
        if len(items) > self.peak:
            self.peak = len(items)
        if self.receive_lot:
            self.receive_lot.unpark(count=n)

    def take(self, max_items: int) -> list[T]:
        items = self.items
        if max_items >= len(items):
            batch = list(items)
            self.items = _NO_ITEMS
        else:
            assert isinstance(items, deque)
            popleft = items.popleft
            batch = [popleft() for _ in range(max_items)]
        self.items_received += len(batch)
        if self.send_lot:
            self.send_lot.unpark_all()
        return batch

    def end(self, error: BaseException | None) -> None:
        if self.finished:
            return
        self.finished = True
        self.error = error
        if self.receive_lot is not None:
            self.receive_lot.unpark_all()


def open_channel(max_items: float) -> tuple[FlowSendChannel[T], FlowReceiveChannel[T]]:
    """Open a channel holding at most ``max_items`` items.

    Args:
        max_items: the bound, in items; at least 1 (``math.inf`` for
            unbounded). Use :func:`trio.open_memory_channel` for rendezvous.

    Returns:
        ``(send_channel, receive_channel)``, trio's order.
    """
    return _open(max_items, defer_end=False)


def _open(max_items: float, *, defer_end: bool) -> tuple[FlowSendChannel[T], FlowReceiveChannel[T]]:
    if max_items != math.inf:
        check_count(max_items, "max_items, unless math.inf,")
    state: _State[T] = _State(max_items, defer_end)
    return FlowSendChannel(state), FlowReceiveChannel(state)


def _open_stage_channel(max_items: float) -> tuple[FlowSendChannel[T], FlowReceiveChannel[T]]:
    """A channel whose end is delivered only by ``_finish`` / ``_abort``."""
    return _open(max_items, defer_end=True)


class FlowSendChannel(trio.abc.SendChannel[T]):
    """The sending end of :func:`open_channel`."""

    __slots__ = ("_closed", "_state")

    def __init__(self, state: _State[T]) -> None:
        self._state = state
        self._closed = False

    def _check(self) -> _State[T]:
        if self._closed:
            raise trio.ClosedResourceError("this send channel is closed")
        state = self._state
        if state.open_receivers == 0:
            raise trio.BrokenResourceError("every receive channel is closed")
        return state

    def send_nowait(self, value: T) -> None:
        """Send one item without blocking, or raise :class:`trio.WouldBlock`."""
        state = self._check()
        if len(state.items) >= state.max_items:
            raise trio.WouldBlock
        state.put((value,))

    async def send(self, value: T) -> None:
        await self.send_some((value,))

    async def send_some(self, items: Sequence[T]) -> int:
        """Wait for room, then accept as many of ``items`` as fit.

        Returns:
            how many leading items were accepted (>= 1 unless ``items`` is
            empty). If cancelled while waiting, nothing was accepted.
        """
        await checkpoint_if_cancelled()
        state = self._check()
        if not items:
            await cancel_shielded_checkpoint()
            return 0
        room = state.max_items - len(state.items)
        if room < 1:
            started = trio.current_time()
            try:
                while room < 1:
                    lot = state.send_lot
                    if lot is None:
                        lot = state.send_lot = Lot()
                    await lot.park()
                    state = self._check()
                    room = state.max_items - len(state.items)
            finally:
                state.send_blocked_seconds += trio.current_time() - started
        else:
            await cancel_shielded_checkpoint()
            state = self._check()
            room = state.max_items - len(state.items)
            if room < 1:  # someone else filled it meanwhile: wait properly
                return await self.send_some(items)
        if room >= len(items):
            state.put(items)
            return len(items)
        n = int(room)
        state.put(items[:n])
        return n

    async def send_all(self, items: Sequence[T]) -> None:
        """Send every item, waiting for room as often as needed.

        Not atomic: if cancelled part-way, a prefix has been sent. Operators
        that must not lose items on cancellation use :meth:`send_some`.
        """
        sent = 0
        while sent < len(items):
            sent += await self.send_some(items[sent:] if sent else items)

    def clone(self) -> FlowSendChannel[T]:
        """Another send end of the same channel; the end comes when all close."""
        if self._closed:
            raise trio.ClosedResourceError("this send channel is closed")
        self._state.open_senders += 1
        return FlowSendChannel(self._state)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        state = self._state
        state.open_senders -= 1
        if state.send_lot is not None:
            state.send_lot.unpark_all()
        if state.open_senders == 0 and not state.defer_end:
            state.end(None)

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def _finish(self) -> None:
        """Deliver a clean end (stage channels: the stage returned)."""
        self.close()
        self._state.end(None)

    def _abort(self, error: BaseException) -> None:
        """Deliver :class:`StreamAborted` after the buffered items."""
        self._state.end(error)  # first: close() alone would end cleanly
        self.close()

    def statistics(self) -> ChannelStatistics:
        return _statistics(self._state)


class FlowReceiveChannel(trio.abc.ReceiveChannel[T]):
    """The receiving end of :func:`open_channel`."""

    __slots__ = ("_closed", "_state")

    def __init__(self, state: _State[T]) -> None:
        self._state = state
        self._closed = False

    def _ready(self) -> bool:
        """Whether a receive would return at once (items, end or error)."""
        if self._closed:
            raise trio.ClosedResourceError("this receive channel is closed")
        return bool(self._state.items) or self._state.finished

    def _raise_end(self) -> None:
        error = self._state.error
        if error is not None:
            raise StreamAborted(f"upstream stage failed: {error!r}") from error
        raise trio.EndOfChannel

    def receive_nowait(self) -> T:
        """Receive one item without blocking, or raise :class:`trio.WouldBlock`."""
        return self.receive_some_nowait(1)[0]

    def receive_some_nowait(self, max_items: int | None = None) -> list[T]:
        """Take up to ``max_items`` ready items (all: ``None``) without waiting.

        Raises:
            trio.WouldBlock: nothing is ready and the stream has not ended.
            trio.EndOfChannel: the stream ended cleanly and is drained.
            StreamAborted: the producing stage crashed (after draining).
        """
        if not self._ready():
            raise trio.WouldBlock
        items = self._state.items
        if not items:
            self._raise_end()
        return self._state.take(max_items if max_items is not None else len(items))

    async def receive(self) -> T:
        return (await self.receive_some(1))[0]

    async def receive_some(self, max_items: int | None = None) -> list[T]:
        """Wait for at least one item, then take up to ``max_items`` ready ones.

        Raises:
            trio.EndOfChannel: the stream ended cleanly and is drained.
            StreamAborted: the producing stage crashed (after draining).
        """
        # _wait_ready's steps, inline: a receiver waiting here (an idle
        # stream's writer, for as long as the stream is open) holds one
        # coroutine frame fewer.
        await checkpoint_if_cancelled()
        if self._ready():
            await cancel_shielded_checkpoint()
        while not self._ready():
            await self._park()
        return self.receive_some_nowait(max_items)

    async def _wait_ready(self) -> None:
        """Wait, as a receiver, until a receive would return at once; take nothing.

        A full checkpoint. For an operator that looks at what is ready
        before deciding how much to take (``throttle`` leaves what it cannot
        afford yet upstream, so the stage before it sees it busy).
        """
        await checkpoint_if_cancelled()
        if self._ready():
            await cancel_shielded_checkpoint()
        while not self._ready():
            await self._park()

    def park(self) -> Awaitable[None] | None:
        """``None`` if a receive would return at once, else an awaitable wait for that.

        For a consumer that owns its wait loop and takes with
        :meth:`receive_some_nowait`: no coroutine frame of its own while it
        waits, which matters when thousands of consumers sit idle (an SSE
        writer per open stream). Await what it returns at once. It is not a
        checkpoint when it returns ``None``, and a wake may find nothing (a
        clone took the items), so ask again after it::

            while (wait := receive.park()) is not None:
                await wait
            items = receive.receive_some_nowait()

        Raises:
            trio.ClosedResourceError: this end is closed.
        """
        return None if self._ready() else self._park()

    def _park(self) -> Awaitable[None]:
        """Park as a receiver of this empty channel; await what it returns at once."""
        state = self._state
        if state.on_wait is not None:
            state.on_wait()
        lot = state.receive_lot
        if lot is None:
            lot = state.receive_lot = Lot()
        return lot.park()

    def clone(self) -> FlowReceiveChannel[T]:
        """Another receive end; each item goes to exactly one receiver."""
        if self._closed:
            raise trio.ClosedResourceError("this receive channel is closed")
        self._state.open_receivers += 1
        return FlowReceiveChannel(self._state)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        state = self._state
        state.open_receivers -= 1
        if state.open_receivers == 0:
            state.items = _NO_ITEMS
            if state.send_lot is not None:
                state.send_lot.unpark_all()
        if state.receive_lot is not None:
            state.receive_lot.unpark_all()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> ChannelStatistics:
        return _statistics(self._state)


def _statistics(state: _State[T]) -> ChannelStatistics:
    return ChannelStatistics(
        current_buffer_used=len(state.items),
        max_buffer_size=state.max_items,
        peak_buffer_used=state.peak,
        open_send_channels=state.open_senders,
        open_receive_channels=state.open_receivers,
        tasks_waiting_send=len(state.send_lot) if state.send_lot is not None else 0,
        tasks_waiting_receive=len(state.receive_lot) if state.receive_lot is not None else 0,
        items_sent=state.items_sent,
        items_received=state.items_received,
        send_blocked_seconds=state.send_blocked_seconds,
    )
