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
from collections import OrderedDict, deque
from typing import Protocol

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


class InMemoryEventStore:
    """A bounded in-process :class:`EventStore` that evicts oldest first.

    Bounded twice: per stream (a long tool call cannot hog the store) and in
    total (many streams cannot exhaust memory). Both bounds count events.

    Args:
        max_events_per_stream: events kept per stream.
        max_events: events kept in total, across all sessions.
    """

    def __init__(self, *, max_events_per_stream: int = 1000, max_events: int = 100_000) -> None:
        if max_events_per_stream < 1 or max_events < 1:
            raise ValueError("bounds must be at least 1")
        self._per_stream = max_events_per_stream
        self._max = max_events
        # Global age order: (session, stream, seq) -> event bytes.
        self._events: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        # Per stream: the seqs currently held, increasing.
        self._streams: dict[_Key, deque[int]] = {}
        self._by_session: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._events)

    def append(self, session_id: str, event_id: EventId, event: bytes) -> None:
        key = (session_id, event_id.stream_id)
        seqs = self._streams.get(key)
        if seqs is None:
            seqs = self._streams[key] = deque()
            self._by_session.setdefault(session_id, set()).add(event_id.stream_id)
        seqs.append(event_id.seq)
        self._events[(session_id, event_id.stream_id, event_id.seq)] = event
        if len(seqs) > self._per_stream:
            del self._events[(session_id, event_id.stream_id, seqs.popleft())]
        while len(self._events) > self._max:
            (old_session, old_stream, _seq), _ = self._events.popitem(last=False)
            old_key = (old_session, old_stream)
            old_seqs = self._streams[old_key]
            old_seqs.popleft()  # per-stream order is global order within a stream
            if not old_seqs:
                self._drop_stream(old_key)

    def replay_after(self, session_id: str, event_id: EventId) -> list[bytes] | None:
        seqs = self._streams.get((session_id, event_id.stream_id))
        if seqs is None:
            return None
        start = bisect.bisect_right(seqs, event_id.seq)
        events = self._events
        return [events[(session_id, event_id.stream_id, seqs[i])] for i in range(start, len(seqs))]

    def forget_session(self, session_id: str) -> None:
        for stream_id in self._by_session.pop(session_id, ()):
            for seq in self._streams.pop((session_id, stream_id)):
                del self._events[(session_id, stream_id, seq)]
        if not self._events:
            # Dicts never shrink on deletion: once empty, let the table sized
            # for the busiest moment go, so memory returns after a burst.
            self._events = OrderedDict()

    def _drop_stream(self, key: _Key) -> None:
        del self._streams[key]
        streams = self._by_session[key[0]]
        streams.discard(key[1])
        if not streams:
            del self._by_session[key[0]]
