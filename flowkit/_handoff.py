"""The hand-off engine behind operators that hold items while downstream is busy.

``drop_oldest``, ``drop_newest``, ``latest``, ``conflate`` and
``adaptive_batch`` all need the same two things at once: keep taking items
from upstream *while* a send to a slow downstream is pending, and change what
is waiting to go out when new items arrive (evict the oldest, replace the
value, grow the batch). Two tasks share the held state: a *puller* admits
upstream chunks into it, and a *pusher* offers it downstream.

The delicate part is the item being offered. A trio ``send`` that is blocked
has not delivered anything yet, so what it holds is still ours: a consumer
that has not asked for anything must get the newest value, not whatever we
happened to start sending before it went quiet (this is Akka's and Reactor's
behaviour, where an element only leaves the buffer on demand). So when the
puller needs to change an offered item, it *reclaims* the offer: it cancels
the pusher's send and waits for the pusher to settle, then changes the held
state. Sends to trio and flowkit memory channels are cancel-atomic, so after
the cancel exactly one of two things happened, and the pusher knows which:
the downstream took the items (counted as delivered) or it did not (they are
still held). Nothing is delivered twice or counted both delivered and dropped.

While an offer is being reclaimed (one scheduling step), the chunk that
caused it is in the puller's hand but not yet admitted: it counts in
``items_in`` and ``buffered`` only once admitted, so the bound holds at every
observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import trio
from trio.lowlevel import ParkingLot

from ._channel import FlowSendChannel
from ._operator import Operator, downstream_has_room, receive_some

__all__: list[str] = []

InT = TypeVar("InT")
OutT = TypeVar("OutT")


class _Handoff(Operator[InT, OutT]):
    """An operator whose held state is offered downstream and reclaimable.

    Subclasses implement the synchronous policy hooks; this class runs the
    two tasks and the reclaim protocol.
    """

    _output_hop = 1  # downstream must look busy as soon as it is

    def __init__(self, *, name: str | None) -> None:
        super().__init__(name=name)
        self._offer_scope: trio.CancelScope | None = None
        self._reclaiming = False
        self._upstream_done = False
        self._pusher_lot = ParkingLot()
        self._puller_lot = ParkingLot()

    # -- policy hooks (synchronous: they run between checkpoints) ----------

    def _room(self) -> int:
        """How many items the puller may take now; 0 backpressures upstream."""
        raise NotImplementedError

    def _holding(self) -> bool:
        """Whether there is something to offer downstream."""
        raise NotImplementedError

    def _reclaim_for(self, chunk: list[InT]) -> bool:
        """Whether admitting ``chunk`` must change what is being offered."""
        raise NotImplementedError

    def _admit(self, chunk: list[InT]) -> None:
        """Take ``chunk`` into the held state (no offer is outstanding)."""
        raise NotImplementedError

    def _values(self, chunked: bool) -> Sequence[OutT]:
        """What to offer: several values only if ``chunked`` (flowkit channel)."""
        raise NotImplementedError

    def _delivered(self, count: int) -> None:
        """The first ``count`` offered values were accepted downstream."""
        raise NotImplementedError

    # -- the engine --------------------------------------------------------

    async def _run(
        self, receive: trio.abc.ReceiveChannel[InT], send: trio.abc.SendChannel[OutT]
    ) -> None:
        # Errors leave the private nursery as a group; the base class
        # surfaces the one real error with its own type.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pull, receive)
            await self._push(send)

    async def _pull(self, receive: trio.abc.ReceiveChannel[InT]) -> None:
        while True:
            while (room := self._room()) < 1:
                await self._puller_lot.park()
            try:
                chunk = await receive_some(receive, room)
            except trio.EndOfChannel:
                self._upstream_done = True
                self._pusher_lot.unpark_all()
                return
            scope = self._offer_scope
            if scope is not None and self._reclaim_for(chunk):
                self._reclaiming = True
                scope.cancel()
                while self._offer_scope is not None:
                    await self._puller_lot.park()
                self._reclaiming = False
            self._admit(chunk)
            self._pusher_lot.unpark_all()

    async def _push(self, send: trio.abc.SendChannel[OutT]) -> None:
        chunked = isinstance(send, FlowSendChannel)
        while True:
            while self._reclaiming or not self._holding():
                if self._upstream_done and not self._holding():
                    return
                await self._pusher_lot.park()
            values = self._values(chunked)
            accepted = 0
            with trio.CancelScope() as scope:
                self._offer_scope = scope
                accepted = await self._offer(send, values)
            self._offer_scope = None
            if accepted:
                self._delivered(accepted)
            self._puller_lot.unpark_all()

    async def _offer(self, send: trio.abc.SendChannel[OutT], values: Sequence[OutT]) -> int:
        """One cancel-atomic send attempt; returns how many values it accepted.

        Not :meth:`Operator._emit`: that loops until everything is sent and
        cannot say how much went out if cancelled, which the reclaim
        protocol needs to know exactly.
        """
        blocked = not downstream_has_room(send)
        started = trio.current_time()
        try:
            if isinstance(send, FlowSendChannel):
                return await send.send_some(values)
            await send.send(values[0])
            return 1
        finally:
            if blocked:
                self._counters.send_blocked_seconds += trio.current_time() - started
