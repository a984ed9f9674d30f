"""The outbox: bounded room for encoded SSE events between a call and its socket.

A tool call runs in a long-lived task (it must outlive the HTTP request that
started it: in the 2025 era a client may drop the connection and resume), and
its events are written by whichever HTTP response currently carries the
stream. The outbox sits between the two and is where the tool's backpressure
policy lives:

* :class:`LosslessOutbox` (the default policy, ``"lossless"``): a bounded
  flowkit channel. When the client reads slowly the channel fills and the
  runner's ``flush`` waits, so the pipeline runs at the client's pace and
  every event is delivered.
* :class:`ConflatingOutbox` (``"conflate"``): never blocks the runner.
  Progress is conflated (only the latest waits; progress is monotonic, so
  nothing is lost in meaning) and logs are dropped oldest-first beyond a
  bound, with a count the runner reports in the result's ``_meta``.

Either way the final response is never dropped, and an outbox holds at most a
fixed number of events whatever the client does.

The writer drains *everything* ready with one :meth:`receive_some` and sends
it as one write: when the socket is slower than the pipeline, events coalesce
into large writes (adaptive batching applied to the socket), and when it is
faster each event goes out at once.

Events are encoded (and filed in the event store) by the runner before they
reach the outbox, so when no connection is attached (a 2025-era client that
dropped its connection) the outbox simply discards them: a resuming client
gets them from the event store, and :meth:`attach` purges stale ones so each
event is delivered exactly once. A lossless outbox discards only as many as
the event store keeps per stream (``max_unread``), and while detached it
*holds* its stream in the store (a :class:`StoreHold`: the session and
server bounds evict other events, never these) until held events fill one of
those bounds: then the runner waits until a client resumes (or the call is
cancelled), so a call whose client is gone pauses instead of having its
oldest events evicted from the store.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable
from typing import Literal, Protocol

import attrs
import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from flowkit import FlowReceiveChannel, FlowSendChannel, open_channel
from flowkit._lot import Lot

__all__ = [
    "ConflatingOutbox",
    "LosslessOutbox",
    "Outbox",
    "OutboxStatistics",
    "StoreHold",
    "open_outbox",
]

EventKind = Literal["progress", "log", "request"]
"""``request``: a request to the client (elicitation...), never conflated nor dropped."""


@attrs.frozen
class OutboxStatistics:
    """A snapshot of one call's outbox.

    Attributes:
        queued: events waiting for the socket now.
        queued_peak: the most events ever waiting at once (the memory bound).
        max_queued: the bound ``queued`` can never exceed (``inf``: none).
        delivered: events handed to a writer.
        writes: batches handed to a writer (one socket write each); fewer
            than ``delivered`` when events coalesced.
        conflated_progress: progress events replaced by a newer one.
        dropped_logs: log events evicted because the client was slow.
    """

    queued: int
    queued_peak: int
    max_queued: float
    delivered: int
    writes: int
    conflated_progress: int
    dropped_logs: int


class StoreHold(Protocol):
    """A lossless call's claim on the event store (``flowkit.mcp.StreamHold``)."""

    def hold(self) -> None:
        """Exempt the stream from the store's session and server bounds."""

    def release(self) -> None:
        """Subject it to them again (a client reads it)."""

    def crowded(self) -> bool:
        """Whether held events fill the session's or the server's bound."""


class Outbox:
    """Common interface of both policies (see the module docstring)."""

    attached: bool
    delivered: int = 0
    writes: int = 0
    dropped_logs: int = 0  # log events evicted because the client was slow

    def add(self, kind: EventKind, data: bytes) -> None:
        """Queue one encoded event (``b""`` is ignored)."""
        raise NotImplementedError

    async def flush(self) -> None:
        """Hand what :meth:`add` queued to the writer; may wait (lossless)."""
        raise NotImplementedError

    def offer(self) -> bool:
        """Hand what :meth:`add` queued to the writer without waiting.

        Returns whether all of it went; if not, :meth:`flush` must follow.
        """
        raise NotImplementedError

    async def finish(self, final: bytes) -> None:
        """Queue the final event (never dropped) and end the outbox."""
        raise NotImplementedError

    def abort(self) -> None:
        """End the outbox now, discarding what waits (the call was cancelled)."""
        raise NotImplementedError

    def wake(self) -> None:
        """Make a waiting :meth:`receive_some` return now, with no events if none wait.

        The writer's keepalive and early end use this instead of a cancel
        scope per wait (a deadline per wait per stream costs more than the
        event it waits for). Never blocks; a no-op once the outbox ended.
        """
        raise NotImplementedError

    def ended(self) -> bool:
        """Everything was taken and nothing more will come: the next
        :meth:`receive_some` raises ``EndOfChannel`` (the writer may end the
        response with the last events)."""
        raise NotImplementedError

    async def receive_some(self) -> list[bytes]:
        """Wait for events, then take all that are ready (:meth:`wait`, :meth:`take`).

        Cancel-atomic: if cancelled while waiting, nothing was taken.

        Raises:
            trio.EndOfChannel: the outbox ended and everything was taken.
        """
        await self.wait()
        return self.take()

    async def wait(self) -> None:
        """Wait until :meth:`take` would return at once (events, a wake or the end).

        A full checkpoint; takes nothing. Cancel-safe.
        """
        await checkpoint_if_cancelled()
        parked = self.park()
        if parked is None:
            await cancel_shielded_checkpoint()
        while parked is not None:
            await parked
            parked = self.park()

    def park(self) -> Awaitable[None] | None:
        """``None`` if :meth:`take` would return at once, else a wait to await at once.

        The wait returns when :meth:`take` may (ask again: ``park`` is
        level-triggered). It is not a checkpoint when nothing waits. The
        HTTP writer loops on this instead of awaiting :meth:`wait`: an idle
        stream's writer then holds no coroutine frame of the outbox's, only
        trio's own wait (docs/benchmarks.md, "Where an idle stream's bytes
        go").
        """
        raise NotImplementedError

    def take(self) -> list[bytes]:
        """The events ready now, without waiting (``[]``: none, or only a wake).

        Raises:
            trio.EndOfChannel: the outbox ended and everything was taken.
        """
        raise NotImplementedError

    def attach(self) -> None:
        """A connection now carries the stream: purge stale events, deliver again."""
        self._purge()
        self.attached = True

    def detach(self) -> None:
        """The connection went away: discard and keep discarding (never block)."""
        self.attached = False
        self._purge()

    def _purge(self) -> None:
        raise NotImplementedError

    def statistics(self) -> OutboxStatistics:
        raise NotImplementedError


class LosslessOutbox(Outbox):
    """End-to-end backpressure through a bounded flowkit channel."""

    #: The most events one :meth:`take` hands over (None: all that are ready).
    #: Only the coalescing benchmark lowers it, to one event per write.
    _take_at_most: int | None = None

    def __init__(
        self,
        max_events: int,
        max_unread: int | None = None,
        max_unread_bytes: int | None = None,
        hold: StoreHold | None = None,
    ) -> None:
        self._send: FlowSendChannel[bytes]
        self._receive: FlowReceiveChannel[bytes]
        self._send, self._receive = open_channel(max_events)
        self._pending: list[bytes] = []
        self._aborted = False
        self._closed = False  # the sending side is closed: ended() may be true
        self._woken = False
        self.attached = True
        # Events discarded since the last detach, and the most that may be
        # (None: no bound); the runner waits on _resumed beyond it.
        self._unread = 0
        self._unread_bytes = 0
        self._max_unread = max_unread
        self._max_unread_bytes = max_unread_bytes
        self._hold = hold
        # Made only when the runner pauses (detached, unread events at a bound).
        self._resumed: trio.Event | None = None

    @property
    def paused(self) -> bool:
        """Detached with ``max_unread`` events unread: the runner waits for a resume."""
        if self.attached or self._aborted:
            return False
        if self._max_unread is not None and self._unread >= self._max_unread:
            return True
        if self._max_unread_bytes is not None and self._unread_bytes >= self._max_unread_bytes:
            return True
        return self._hold is not None and self._hold.crowded()

    def attach(self) -> None:
        super().attach()
        if self._hold is not None:
            self._hold.release()
        self._unread = self._unread_bytes = 0
        self._wake_paused()

    def detach(self) -> None:
        # Held until a client resumes, also after the call ends (its final
        # response waits in the store for that client).
        if self._hold is not None and not self._aborted:
            self._hold.hold()
        super().detach()

    def add(self, kind: EventKind, data: bytes) -> None:
        if not data:
            return
        pending = self._pending
        if not pending and self.attached and not self._aborted:
            # Straight into the channel while it has room, as offer() would
            # next: the common event skips the pending list (this is per event).
            try:
                self._send.send_nowait(data)
                return
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # offer() or flush() decides, as for any pending event
        pending.append(data)

    def wake(self) -> None:
        # An empty marker in the channel: only when it is empty (otherwise a
        # receive returns at once anyway), so it never takes an event's room.
        if self._receive.statistics().current_buffer_used:
            return
        try:
            self._send.send_nowait(b"")
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return
        self._woken = True

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        sent = 0
        # send_some, not send_all: a detach while we wait must stop the wait.
        # An abort (the call was cancelled) may land while this task is already
        # scheduled to run on: then there is nothing to send, and the
        # checkpoint below delivers the cancellation, not ClosedResourceError.
        while sent < len(pending) and self.attached and not self._aborted:
            try:
                sent += await self._send.send_some(pending[sent:] if sent else pending)
            except trio.ClosedResourceError:
                if not self._aborted:
                    raise
        if not self.attached and not self._aborted:
            # Filed in the store, read by nobody yet.
            self._unread += len(pending) - sent
            self._unread_bytes += sum(map(len, pending[sent:]))
            if self.paused:
                if self._resumed is None:
                    self._resumed = trio.Event()
                await self._resumed.wait()  # backpressure until a client resumes
                return
        if not pending or not self.attached or self._aborted:
            await trio.lowlevel.checkpoint()

    def offer(self) -> bool:
        pending = self._pending
        if not pending:
            return True
        if not self.attached or self._aborted:
            if not self._aborted:
                self._unread += len(pending)
                self._unread_bytes += sum(map(len, pending))
            pending.clear()  # as flush: nobody reads (the event store has them)
            return not self.paused  # paused: flush() waits
        send = self._send
        sent = 0
        try:
            for data in pending:
                send.send_nowait(data)
                sent += 1
        except trio.WouldBlock:
            del pending[:sent]
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            del pending[:sent]
            return False  # flush decides (raises, or the cancellation lands)
        pending.clear()
        return True

    async def finish(self, final: bytes) -> None:
        self.add("progress", final)
        try:
            await self.flush()
        finally:
            self._send.close()
            self._closed = True

    def abort(self) -> None:
        self._aborted = True
        self._pending.clear()
        self._send.close()
        self._closed = True
        self._purge()
        self._wake_paused()

    def _wake_paused(self) -> None:
        """Let a runner paused in :meth:`flush` go on (resumed, or aborted)."""
        resumed, self._resumed = self._resumed, None
        if resumed is not None:
            resumed.set()

    def ended(self) -> bool:
        # Asked at every write: the flag spares building the channel's
        # statistics while the call runs, which is nearly always.
        return self._closed and not self._send.statistics().current_buffer_used

    def park(self) -> Awaitable[None] | None:
        return self._receive.park()

    def take(self) -> list[bytes]:
        try:
            events = self._receive.receive_some_nowait(self._take_at_most)
        except trio.WouldBlock:
            return []
        if self._woken:
            self._woken = False
            events = [event for event in events if event]
        self.delivered += len(events)
        self.writes += 1
        return events

    def _purge(self) -> None:
        # Taking items also wakes a runner blocked in flush(), which then
        # finds the outbox detached on its next flush and stops waiting.
        while True:
            try:
                self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    def statistics(self) -> OutboxStatistics:
        s = self._receive.statistics()
        return OutboxStatistics(
            queued=s.current_buffer_used - (self._woken and s.current_buffer_used > 0),
            queued_peak=s.peak_buffer_used,
            max_queued=s.max_buffer_size,
            delivered=self.delivered,
            writes=self.writes,
            conflated_progress=0,
            dropped_logs=0,
        )


class ConflatingOutbox(Outbox):
    """Latest-wins progress and drop-oldest logs; the runner never waits.

    This is ``flowkit.latest`` and ``flowkit.drop_oldest`` applied to two
    kinds of event sharing one ordered write, without a task per stream:
    the operators each need their own task and channel, which at thousands
    of open streams costs more memory than the events themselves. The
    policies are the operators' (see ``docs/ops/buffers.md``).
    """

    def __init__(self, max_logs: int) -> None:
        self._logs: deque[bytes] = deque()
        self._requests: list[bytes] = []  # to the client: never dropped
        self._max_logs = max_logs
        self._progress: bytes | None = None
        self._final: bytes | None = None
        self._ended = False
        self._woken = False
        self._lot = Lot()  # trio's ParkingLot in fewer bytes per idle stream
        self._peak = 0
        self.attached = True
        self.conflated_progress = 0
        self.dropped_logs = 0

    def _queued(self) -> int:
        return (
            len(self._requests)
            + len(self._logs)
            + (self._progress is not None)
            + (self._final is not None)
        )

    def add(self, kind: EventKind, data: bytes) -> None:
        if not data or not self.attached:
            return
        if kind == "progress":
            if self._progress is not None:
                self.conflated_progress += 1
            self._progress = data
        elif kind == "request":
            self._requests.append(data)
        else:
            if len(self._logs) >= self._max_logs:
                self._logs.popleft()
                self.dropped_logs += 1
            self._logs.append(data)
        self._peak = max(self._peak, self._queued())

    async def flush(self) -> None:
        if self._queued():
            self._lot.unpark_all()
        await trio.lowlevel.checkpoint()

    def offer(self) -> bool:
        if self._queued():
            self._lot.unpark_all()
        return True

    async def finish(self, final: bytes) -> None:
        if self.attached and final:
            self._final = final
            self._peak = max(self._peak, self._queued())
        self._ended = True
        self._lot.unpark_all()
        await trio.lowlevel.checkpoint()

    def abort(self) -> None:
        self._purge()
        self._ended = True
        self._lot.unpark_all()

    def wake(self) -> None:
        if not self._ended:
            self._woken = True
            self._lot.unpark_all()

    def ended(self) -> bool:
        return self._ended and not self._queued()

    def park(self) -> Awaitable[None] | None:
        if self._queued() or self._ended or self._woken:
            return None
        return self._lot.park()

    def take(self) -> list[bytes]:
        self._woken = False
        if not self._queued() and not self._ended:
            return []
        events = self._requests + list(self._logs)
        self._requests = []
        self._logs.clear()
        if self._progress is not None:
            events.append(self._progress)
            self._progress = None
        if self._final is not None:
            events.append(self._final)
            self._final = None
        if not events:
            raise trio.EndOfChannel
        self.delivered += len(events)
        self.writes += 1
        return events

    def _purge(self) -> None:
        self._requests = []
        self._logs.clear()
        self._progress = None
        self._final = None

    def statistics(self) -> OutboxStatistics:
        return OutboxStatistics(
            queued=self._queued(),
            queued_peak=self._peak,
            max_queued=self._max_logs + 2,
            delivered=self.delivered,
            writes=self.writes,
            conflated_progress=self.conflated_progress,
            dropped_logs=self.dropped_logs,
        )


def open_outbox(
    policy: str,
    *,
    max_events: int,
    max_logs: int,
    max_unread: int | None = None,
    max_unread_bytes: int | None = None,
    hold: StoreHold | None = None,
) -> Outbox:
    """The outbox for a tool's ``policy`` (``"lossless"`` or ``"conflate"``).

    ``max_unread`` / ``max_unread_bytes``: events / bytes a detached lossless
    call may file before it pauses (within what the event store keeps of one
    stream); ``None``: no pause on that count. ``hold``: the lossless call's
    claim on the store while detached (see :class:`StoreHold`).
    """
    if policy == "conflate":
        return ConflatingOutbox(max_logs)
    if max_events == math.inf:
        raise ValueError("a lossless outbox must be bounded")
    return LosslessOutbox(max_events, max_unread, max_unread_bytes, hold)
