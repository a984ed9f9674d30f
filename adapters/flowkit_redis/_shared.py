"""The core's shared-state boundary, kept in Redis: :class:`RedisSharedStore`.

``flowkit.mcp``'s shared endpoint (``Endpoint(instance=...)``) does no I/O.
Before a request it names what the request touches (``StateKeys``); the
adapter reads that here (:meth:`RedisSharedStore.load`) and passes it in.
After the request, and after a stream emitted, the adapter takes the core's
changes and writes them here (:meth:`RedisSharedStore.apply`) **before**
sending the bytes they belong to. That ordering is the whole of "no event a
client has seen can be missing from a replay" (docs/scaling.md).

The hot path is a stream's events: :meth:`apply` stores each run of
consecutive events of one stream (what one socket write carries) as one
entry, one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowkit.mcp._shared import (
    CallEnded,
    CallStarted,
    Change,
    EventAppended,
    Loaded,
    SessionClosed,
    SessionSaved,
    SessionTouched,
    StateKeys,
    StreamAttached,
    StreamDetached,
)

from ._events import RedisEventStore
from ._sessions import RedisSessionStore

__all__ = ["RedisSharedStore"]


class RedisSharedStore:
    """A ``flowkit.mcp`` ``SharedStore`` over Redis: sessions plus events.

    Args:
        sessions: the session store (records, running calls, carried
            streams, the cap, expiry).
        events: the event store (one Redis stream per MCP stream).
    """

    def __init__(self, sessions: RedisSessionStore, events: RedisEventStore) -> None:
        self.sessions = sessions
        self.events = events

    async def load(self, keys: StateKeys) -> Loaded:
        """Read what a request touches: its session, a resumed stream's later events, the count.

        Raises:
            StoreUnavailable: Redis cannot be reached (answer 503).
        """
        session = None
        replay: list[bytes] | None = None
        if keys.session_id is not None:
            session = await self.sessions.load(keys.session_id)
            if session is not None and keys.resume is not None:
                found = await self.events.replay(
                    keys.session_id, keys.resume.stream_id, keys.resume.seq
                )
                if found is not None:
                    replay = [data async for chunk in found for data in chunk]
        live = await self.sessions.count() if keys.count_sessions else 0
        return Loaded(session=session, replay=replay, live_sessions=live)

    async def apply(self, changes: Sequence[Change]) -> None:
        """Write ``changes`` in order; a run of one stream's events is one entry.

        Raises:
            SessionCapReached: a new session over the cluster-wide cap.
            StoreUnavailable: Redis cannot be reached: do not send the bytes
                these changes belong to.
        """
        index = 0
        while index < len(changes):
            change = changes[index]
            if isinstance(change, EventAppended):
                end = index + 1
                while end < len(changes) and _continues(changes[end], changes[end - 1]):
                    end += 1
                run = changes[index:end]
                await self.events.append(
                    change.session_id,
                    change.stream_id,
                    change.seq,
                    [event.data for event in run],  # type: ignore[union-attr]
                )
                index = end
                continue
            await self._apply_one(change)
            index += 1

    async def _apply_one(self, change: Change) -> None:
        sessions = self.sessions
        if isinstance(change, SessionSaved):
            await sessions.save(change.record)
        elif isinstance(change, SessionTouched):
            await sessions.touch([change.session_id])
        elif isinstance(change, SessionClosed):
            await sessions.close(change.session_id)
            await self.events.forget_session(change.session_id)
        elif isinstance(change, CallStarted):
            await sessions.call_started(change.session_id, change.request_id, change.stream_id)
        elif isinstance(change, CallEnded):
            await sessions.call_ended(change.session_id, change.request_id)
        elif isinstance(change, StreamAttached):
            await sessions.attach(change.session_id, change.stream_id)
        elif isinstance(change, StreamDetached):
            await sessions.detach(change.session_id, change.stream_id)


def _continues(change: Change, previous: Change) -> bool:
    """``change`` is the next event of the same stream as ``previous``."""
    return (
        isinstance(change, EventAppended)
        and isinstance(previous, EventAppended)
        and change.session_id == previous.session_id
        and change.stream_id == previous.stream_id
        and change.seq == previous.seq + 1
    )
