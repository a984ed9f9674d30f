"""The event store: what makes SSE streams resumable.

Every SSE event the core emits with an id is appended here; a client that lost
its connection reconnects with GET + ``Last-Event-ID`` and gets the events of
*that stream* after that id ("Resumability and Redelivery", 2025-11-25). The
store is keyed by session first, so one session can never read another's
events even with a guessed id, and by stream second, so replay never crosses
streams.

Ids are allocated by the stream, not by the store: the id is part of the
encoded event bytes, and allocating it before encoding keeps the hot path at
one encode per event. The store only files bytes under ids it is given.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeAlias, TypeVar

from .._checks import check_count
from ._sse import EventId

__all__ = ["EventStore", "InMemoryEventStore", "StreamHold"]


class EventStore(Protocol):
    """Storage for encoded SSE events, for replay on resumption.

    Implementations may be bounded and evict old events; replay then starts
    at the oldest retained event. A shared store (e.g. Redis) lets a resumed
    GET land on another worker.
    """

    def append(self, session_id: str, event_id: EventId, event: bytes) -> None:
        """Store one encoded event. Ids of a stream arrive in increasing order."""

    def replay_after(self, session_id: str, event_id: EventId) -> list[bytes] | None:
        """Events of ``event_id``'s stream in ``session_id`` after ``event_id``.

        Returns ``None`` if this session has no such stream (never existed,
        belongs to another session, or fully evicted).
        """

    def forget_session(self, session_id: str) -> None:
        """Drop everything stored for a session that ended."""


_Key = tuple[str, str]  # (session_id, stream_id)
_COMPACT_AT = 64  # a session's order is compacted past this many stale entries


_T = TypeVar("_T")

_Run: TypeAlias = list[_T] | deque[_T]
"""Events (or order entries) oldest first: a list while short, then a deque.

An empty ``deque`` already holds a 64-slot block (760 bytes), and every
open stream and session keeps two of them for one or two events: a list
until ``_SMALL`` entries is ~0.1 KiB, and ``pop(0)`` on so few is as cheap
as ``popleft``.
"""

_SMALL = 32


def _popleft(run: _Run[_T]) -> _T:
    """The oldest entry of a run (``_Stream.popleft`` inlines this on the per-event path)."""
    return run.popleft() if isinstance(run, deque) else run.pop(0)


class _Session:
    """One session's streams, its own age order and its byte counts.

    It lives until :meth:`InMemoryEventStore.forget_session`, even when every
    stream of it was evicted: streams filed again later keep their counts
    into its order valid.
    """

    __slots__ = ("held", "order", "pins", "size", "stale", "streams")

    def __init__(self) -> None:
        self.streams: set[str] = set()
        self.order: _Run[_Stream] = []  # one entry per event, as the store's
        self.stale = 0
        self.size = 0  # bytes of its streams' retained events
        self.held = 0  # bytes of them in held streams
        # Ids of its held streams: made at the first hold (an empty set is
        # ~0.2 KiB per session, and most sessions never hold a stream).
        self.pins: set[str] | None = None

    def compact(self) -> None:
        """Remove the stale entries from the order (amortised: over half of it)."""
        live: list[_Stream] = []
        for stream in self.order:
            if stream.sstale:
                stream.sstale -= 1
            else:
                live.append(stream)
        self.order = live if len(live) < _SMALL else deque(live)
        self.stale = 0


_NO_SESSION = _Session()  # a stream's session before it is first filed


class _Stream:
    """One stream's retained events, oldest first, and its appender.

    Every event appended gets one entry in the store's age order and one in
    its session's. ``stale`` (``sstale``) counts this stream's entries in the
    store's (session's) order whose events are already gone, evicted by
    another bound or forgotten: a stream's events leave oldest first, and
    entries are anonymous within a stream, so popping any entry of it
    consumes a stale one first. ``parked`` (``sparked``) counts the entries
    taken out of an order while the stream is ``held`` (its events must stay):
    they go back, at the young end, when it is released.

    A stream's sequence numbers are consecutive (the core numbers them so),
    so only the first retained one is kept; ``seqs`` is made only if an
    append breaks the run (one deque per stream, not two, for thousands of
    open streams).
    """

    __slots__ = (
        "dropped",
        "events",
        "first",
        "held",
        "key",
        "parked",
        "seqs",
        "session",
        "size",
        "sparked",
        "sstale",
        "stale",
        "store",
    )

    def __init__(self, store: InMemoryEventStore, key: _Key) -> None:
        self.store = store
        self.key = key
        self.session = _NO_SESSION
        self.first = 0  # the seq of events[0] while seqs is None
        self.seqs: deque[int] | None = None
        self.events: _Run[bytes] = []
        self.stale = self.sstale = 0
        self.parked = self.sparked = 0
        self.held = False
        self.size = 0  # bytes of the retained events
        self.dropped = True  # not in the store's tables (yet, or any more)

    def append(self, seq: int, event: bytes) -> None:
        store = self.store
        if self.dropped:
            current = store._streams.get(self.key)
            if current is not None:  # the key was filed again since we left
                current.append(seq, event)
                return
            store._register(self)
        events = self.events
        seqs = self.seqs
        if seqs is not None:
            seqs.append(seq)
        elif not events:
            self.first = seq
        elif seq != self.first + len(events):
            seqs = self.seqs = deque(range(self.first, self.first + len(events)))
            seqs.append(seq)
        # A run becomes a deque once long (no helper call: this is per event).
        if len(events) >= _SMALL and isinstance(events, list):
            events = self.events = deque(events)
        events.append(event)
        size = len(event)
        session = self.session
        self.size += size
        session.size += size
        store._bytes += size
        store._count += 1
        if self.held:
            session.held += size
            store._held_bytes += size
            store._held_count += 1
        store._order.append(self)
        order = session.order
        if len(order) >= _SMALL and isinstance(order, list):
            order = session.order = deque(order)
        order.append(self)
        if len(events) > store._per_stream or (
            self.size > store._per_stream_bytes and len(events) > 1
        ):
            # Over this stream's bounds: its oldest go (never its newest event),
            # and their entries in both orders go stale.
            while True:
                self.popleft()
                if self.parked:
                    self.parked -= 1
                else:
                    self.stale += 1
                    store._stale += 1
                if self.sparked:
                    self.sparked -= 1
                else:
                    self.sstale += 1
                    session.stale += 1
                if not (self.size > store._per_stream_bytes and len(events) > 1):
                    break
        if session.size > store._per_session_bytes:
            store._evict_session(session)
        if store._count > store._max or store._bytes > store._max_bytes:
            store._evict()
        if store._stale > store._max:
            store._compact()
        if session.stale > _COMPACT_AT and 2 * session.stale > len(session.order):
            session.compact()

    def popleft(self) -> None:
        """Drop the oldest retained event (the orders' entries are the caller's)."""
        events = self.events
        gone = len(events.popleft() if isinstance(events, deque) else events.pop(0))  # _popleft
        store = self.store
        self.size -= gone
        self.session.size -= gone
        store._bytes -= gone
        store._count -= 1
        store.evicted += 1
        if self.held:
            self.session.held -= gone
            store._held_bytes -= gone
            store._held_count -= 1
        if self.seqs is not None:
            self.seqs.popleft()
        else:
            self.first += 1

    def unlist(self) -> None:
        """An event left other than through the store's order: account for its entry."""
        if self.parked:
            self.parked -= 1
        else:
            self.stale += 1
            self.store._stale += 1

    def unlist_session(self) -> None:
        """An event left other than through the session's order: likewise."""
        if self.sparked:
            self.sparked -= 1
        else:
            self.sstale += 1
            self.session.stale += 1

    def index_after(self, seq: int) -> int:
        """The index in ``events`` of the first event after ``seq``."""
        if self.seqs is not None:
            return bisect.bisect_right(self.seqs, seq)
        return min(max(seq - self.first + 1, 0), len(self.events))


class StreamHold:
    """One stream's claim on an :class:`InMemoryEventStore`'s session and server bounds.

    A lossless call whose client is gone holds its stream: the session and
    server bounds then never evict its events (backpressure, not eviction),
    and :meth:`crowded` tells its producer to pause once held events fill a
    bound. :meth:`release` when a client reads the stream again.
    """

    __slots__ = ("_key", "_store")

    def __init__(self, store: InMemoryEventStore, session_id: str, stream_id: str) -> None:
        self._store = store
        self._key = (session_id, stream_id)

    def hold(self) -> None:
        """Keep this stream's events whatever the session and server bounds."""
        self._store.hold(*self._key)

    def release(self) -> None:
        """Let the session and server bounds evict this stream's events again."""
        self._store.release(*self._key)

    def crowded(self) -> bool:
        """Whether held events fill this stream's session or the server: pause."""
        return self._store.crowded(self._key[0])


class InMemoryEventStore:
    """A bounded in-process :class:`EventStore` that evicts oldest first.

    Bounded per stream (a long tool call cannot hog the store), per session
    (one client's calls cannot take the server's share) and in total (many
    sessions cannot exhaust memory); in bytes, and per stream and in total
    also in events: events of a few bytes and events of a megabyte both stay
    within a known memory. A stream's newest event is kept by its own bound
    whatever its size (it may be the final response a resuming client needs).

    A *held* stream (:meth:`hold`: a lossless call whose client is gone) is
    never evicted from by the session and server bounds; its producer asks
    :meth:`crowded` and pauses instead, so what it made waits for its client.
    Everything else (events already delivered, a conflating call's) is
    evicted oldest first, counted in :attr:`evicted`. Held events can pass a
    bound by what a paused producer filed in its last step.

    Besides the protocol it offers :meth:`appender`, the hot path the core
    uses when a store has it: one bound call per event, no id object.

    Args:
        max_events_per_stream: events kept per stream.
        max_events: events kept in total, across all sessions.
        max_bytes_per_stream: bytes of events kept per stream (8 MiB).
        max_bytes_per_session: bytes of events kept per session (32 MiB).
        max_bytes: bytes of events kept in total (256 MiB).
    """

    def __init__(
        self,
        *,
        max_events_per_stream: int = 1000,
        max_events: int = 100_000,
        max_bytes_per_stream: int = 8 * 1024 * 1024,
        max_bytes_per_session: int = 32 * 1024 * 1024,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        check_count(max_events_per_stream, "max_events_per_stream")
        check_count(max_events, "max_events")
        check_count(max_bytes_per_stream, "max_bytes_per_stream")
        check_count(max_bytes_per_session, "max_bytes_per_session")
        check_count(max_bytes, "max_bytes")
        self._per_stream = max_events_per_stream
        self._max = max_events
        self._per_stream_bytes = max_bytes_per_stream
        self._per_session_bytes = max_bytes_per_session
        self._max_bytes = max_bytes
        self._bytes = 0
        self._streams: dict[_Key, _Stream] = {}
        self._sessions: dict[str, _Session] = {}
        # Global age order: one entry per event appended and not yet popped;
        # ``_stale`` of them name events already gone (see _Stream).
        self._order: deque[_Stream] = deque()
        self._count = 0
        self._stale = 0
        self._held_bytes = 0
        self._held_count = 0
        self.evicted = 0
        """Events dropped to keep within a bound, since the store was made."""

    def __len__(self) -> int:
        return self._count

    @property
    def max_events_per_stream(self) -> int:
        """Events kept per stream: a detached lossless call pauses at this many."""
        return self._per_stream

    @property
    def max_bytes_per_stream(self) -> int:
        """Bytes kept per stream: a detached lossless call pauses within this."""
        return self._per_stream_bytes

    @property
    def max_bytes_per_session(self) -> int:
        """Bytes kept per session."""
        return self._per_session_bytes

    @property
    def max_bytes(self) -> int:
        """Bytes kept in total."""
        return self._max_bytes

    @property
    def size(self) -> int:
        """Bytes of the events kept now."""
        return self._bytes

    def session_size(self, session_id: str) -> int:
        """Bytes of the events kept now for one session."""
        session = self._sessions.get(session_id)
        return 0 if session is None else session.size

    def appender(self, session_id: str, stream_id: str) -> Callable[[int, bytes], None]:
        """``append(seq, event)`` for one stream: :meth:`append` without the lookups."""
        key = (session_id, stream_id)
        stream = self._streams.get(key)
        if stream is None:
            stream = _Stream(self, key)  # registered by its first append
        return stream.append

    def append(self, session_id: str, event_id: EventId, event: bytes) -> None:
        self.appender(session_id, event_id.stream_id)(event_id.seq, event)

    def replay_after(self, session_id: str, event_id: EventId) -> list[bytes] | None:
        stream = self._streams.get((session_id, event_id.stream_id))
        if stream is None:
            return None
        start = stream.index_after(event_id.seq)
        return list(itertools.islice(stream.events, start, None))

    def forget_session(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            for stream_id in session.streams:
                stream = self._streams.pop((session_id, stream_id))
                gone = len(stream.events)
                stream.events.clear()
                stream.seqs = None
                self._bytes -= stream.size
                self._count -= gone
                if stream.held:
                    self._held_bytes -= stream.size
                    self._held_count -= gone
                stream.size = 0
                stream.held = False
                # Its entries left in the store's order are stale now.
                stream.stale += gone - stream.parked
                self._stale += gone - stream.parked
                stream.parked = stream.sparked = stream.sstale = 0
                stream.session = _NO_SESSION
                stream.dropped = True
        if not self._count:
            # Every entry left in the age order is stale: let the deque sized
            # for the busiest moment go, so memory returns after a burst.
            for stream in self._order:
                stream.stale = 0
            self._order = deque()
            self._stale = 0

    def holder(self, session_id: str, stream_id: str) -> StreamHold:
        """A :class:`StreamHold` on one stream (what a lossless call's outbox uses)."""
        return StreamHold(self, session_id, stream_id)

    def hold(self, session_id: str, stream_id: str) -> None:
        """Exempt a stream from the session and server bounds until :meth:`release`.

        Also the events it files later; its own per-stream bound still
        applies (its producer pauses within it). A no-op for a forgotten
        session.
        """
        session = self._sessions.get(session_id)
        if session is None:
            return
        if session.pins is None:
            session.pins = set()
        session.pins.add(stream_id)
        stream = self._streams.get((session_id, stream_id))
        if stream is not None and not stream.held:
            stream.held = True
            session.held += stream.size
            self._held_bytes += stream.size
            self._held_count += len(stream.events)

    def release(self, session_id: str, stream_id: str) -> None:
        """Let the session and server bounds evict a held stream again."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        if session.pins is not None:
            session.pins.discard(stream_id)
        stream = self._streams.get((session_id, stream_id))
        if stream is None or not stream.held:
            return
        stream.held = False
        session.held -= stream.size
        self._held_bytes -= stream.size
        self._held_count -= len(stream.events)
        # Its parked entries rejoin the orders, at the young end.
        self._order.extend(itertools.repeat(stream, stream.parked))
        order = session.order
        if isinstance(order, list) and len(order) + stream.sparked >= _SMALL:
            order = session.order = deque(order)
        order.extend(itertools.repeat(stream, stream.sparked))
        stream.parked = stream.sparked = 0
        if session.size > self._per_session_bytes:
            self._evict_session(session)
        if self._count > self._max or self._bytes > self._max_bytes:
            self._evict()

    def crowded(self, session_id: str) -> bool:
        """Whether held events fill ``session_id``'s bound or the server's."""
        session = self._sessions.get(session_id)
        return (
            (session is not None and session.held >= self._per_session_bytes)
            or self._held_bytes >= self._max_bytes
            or self._held_count >= self._max
        )

    def _register(self, stream: _Stream) -> None:
        session_id, stream_id = stream.key
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session()
        if stream.session is not session:  # counts into another order mean nothing here
            stream.session = session
            stream.sstale = stream.sparked = 0
        session.streams.add(stream_id)
        self._streams[stream.key] = stream
        stream.held = session.pins is not None and stream_id in session.pins
        stream.dropped = False

    def _evict(self) -> None:
        order = self._order
        while (self._count > self._max or self._bytes > self._max_bytes) and order:
            stream = order.popleft()
            if stream.stale:
                stream.stale -= 1
                self._stale -= 1
            elif stream.held:
                stream.parked += 1
            else:
                stream.popleft()
                stream.unlist_session()
                if not stream.events:
                    self._drop(stream)

    def _evict_session(self, session: _Session) -> None:
        order = session.order
        while session.size > self._per_session_bytes and order:
            stream = _popleft(order)
            if stream.sstale:
                stream.sstale -= 1
                session.stale -= 1
            elif stream.held:
                stream.sparked += 1
            else:
                stream.popleft()
                stream.unlist()
                if not stream.events:
                    self._drop(stream)

    def _compact(self) -> None:
        """Remove the stale entries from the age order (amortised: they number > max)."""
        live: deque[_Stream] = deque()
        for stream in self._order:
            if stream.stale:
                stream.stale -= 1
            else:
                live.append(stream)
        self._order = live
        self._stale = 0

    def _drop(self, stream: _Stream) -> None:
        session_id, stream_id = stream.key
        del self._streams[stream.key]
        self._sessions[session_id].streams.discard(stream_id)
        stream.dropped = True
