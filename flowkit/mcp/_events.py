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
from typing import Protocol

from .._checks import check_count
from ._sse import EventId

__all__ = ["EventStore", "InMemoryEventStore"]


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


class _Stream:
    """One stream's retained events, oldest first, and its appender.

    ``stale`` counts this stream's entries at the front of the store's age
    order whose events are already gone (evicted by the per-stream bound or
    forgotten): they are this stream's oldest entries there, because a
    stream's events leave oldest first.

    A stream's sequence numbers are consecutive (the core numbers them so),
    so only the first retained one is kept; ``seqs`` is made only if an
    append breaks the run (one deque per stream, not two, for thousands of
    open streams).
    """

    __slots__ = ("dropped", "events", "first", "key", "seqs", "size", "stale", "store")

    def __init__(self, store: InMemoryEventStore, key: _Key) -> None:
        self.store = store
        self.key = key
        self.first = 0  # the seq of events[0] while seqs is None
        self.seqs: deque[int] | None = None
        self.events: deque[bytes] = deque()
        self.stale = 0
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
        events.append(event)
        size = len(event)
        self.size += size
        store._bytes += size
        store._order.append(self)
        if len(events) > store._per_stream or (
            self.size > store._per_stream_bytes and len(events) > 1
        ):
            # Over this stream's bounds: its oldest go (never its newest event).
            self.popleft()
            self.stale += 1
            store._stale += 1
            while self.size > store._per_stream_bytes and len(events) > 1:
                self.popleft()
                self.stale += 1
                store._stale += 1
                store._count -= 1
            if store._stale > store._max:
                store._compact()
            if store._bytes > store._max_bytes:
                store._evict()
        else:
            store._count += 1
            if store._count > store._max or store._bytes > store._max_bytes:
                store._evict()

    def popleft(self) -> None:
        """Drop the oldest retained event."""
        gone = len(self.events.popleft())
        self.size -= gone
        self.store._bytes -= gone
        if self.seqs is not None:
            self.seqs.popleft()
        else:
            self.first += 1

    def index_after(self, seq: int) -> int:
        """The index in ``events`` of the first event after ``seq``."""
        if self.seqs is not None:
            return bisect.bisect_right(self.seqs, seq)
        return min(max(seq - self.first + 1, 0), len(self.events))

    def clear(self) -> None:
        self.events.clear()
        self.store._bytes -= self.size
        self.size = 0
        self.seqs = None


class InMemoryEventStore:
    """A bounded in-process :class:`EventStore` that evicts oldest first.

    Bounded per stream (a long tool call cannot hog the store) and in total
    (many streams cannot exhaust memory), each in events and in bytes: events
    of a few bytes and events of a megabyte both stay within a known memory.
    A stream's newest event is kept whatever its size (it may be the final
    response a resuming client needs).

    Besides the protocol it offers :meth:`appender`, the hot path the core
    uses when a store has it: one bound call per event, no id object.

    Args:
        max_events_per_stream: events kept per stream.
        max_events: events kept in total, across all sessions.
        max_bytes_per_stream: bytes of events kept per stream (8 MiB).
        max_bytes: bytes of events kept in total (256 MiB).
    """

    def __init__(
        self,
        *,
        max_events_per_stream: int = 1000,
        max_events: int = 100_000,
        max_bytes_per_stream: int = 8 * 1024 * 1024,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        check_count(max_events_per_stream, "max_events_per_stream")
        check_count(max_events, "max_events")
        check_count(max_bytes_per_stream, "max_bytes_per_stream")
        check_count(max_bytes, "max_bytes")
        self._per_stream = max_events_per_stream
        self._max = max_events
        self._per_stream_bytes = max_bytes_per_stream
        self._max_bytes = max_bytes
        self._bytes = 0
        self._streams: dict[_Key, _Stream] = {}
        self._by_session: dict[str, set[str]] = {}
        # Global age order: one entry per event appended and not yet popped;
        # ``_stale`` of them name events already gone (see _Stream).
        self._order: deque[_Stream] = deque()
        self._count = 0
        self._stale = 0

    def __len__(self) -> int:
        return self._count

    @property
    def max_events_per_stream(self) -> int:
        """Events kept per stream: a detached lossless call pauses at this many."""
        return self._per_stream

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
        for stream_id in self._by_session.pop(session_id, ()):
            stream = self._streams.pop((session_id, stream_id))
            gone = len(stream.events)
            stream.clear()
            stream.stale += gone
            stream.dropped = True
            self._count -= gone
            self._stale += gone
        if not self._count:
            # Every entry left in the age order is stale: let the deque sized
            # for the busiest moment go, so memory returns after a burst.
            for stream in self._order:
                stream.stale = 0
            self._order = deque()
            self._stale = 0

    def _register(self, stream: _Stream) -> None:
        session_id, stream_id = stream.key
        self._streams[stream.key] = stream
        self._by_session.setdefault(session_id, set()).add(stream_id)
        stream.dropped = False

    @property
    def max_bytes_per_stream(self) -> int:
        """Bytes kept per stream: a detached lossless call pauses within this."""
        return self._per_stream_bytes

    @property
    def size(self) -> int:
        """Bytes of the events kept now."""
        return self._bytes

    def _evict(self) -> None:
        order = self._order
        while self._count > self._max or self._bytes > self._max_bytes:
            stream = order.popleft()
            if stream.stale:
                stream.stale -= 1
                self._stale -= 1
                continue
            stream.popleft()
            self._count -= 1
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
        streams = self._by_session[session_id]
        streams.discard(stream_id)
        if not streams:
            del self._by_session[session_id]
        stream.dropped = True
