"""Everything an :class:`~flowkit.mcp.Endpoint` keeps between requests, in one place.

The endpoint itself holds nothing else: a request is handled by plain
functions (``_methods``, ``_endpoint``) that read and change this state. It
is all in this process's memory today; it is also exactly what a store shared
between instances has to cover, piece by piece:

* ``sessions``: session lookup by id *and principal* (ids leaked across users
  are useless), the cap, idle expiry, and each session's running calls
  (``Session.in_flight``) and GET stream;
* ``event_store``: stored events and their replay after ``Last-Event-ID``;
* ``subscriptions``: the stateless era's open ``subscriptions/listen`` streams;
* each stream's own life (attached to a response, detached, done), which is
  its transition table (``_stream``).

Time is injected (``clock``): nothing here reads a clock of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from ._config import EndpointConfig
from ._events import EventStore
from ._prompts import PromptSet
from ._resources import ResourceSet
from ._sessions import Session, SessionRegistry
from ._shared import (
    CallEnded,
    CallStarted,
    Change,
    Loaded,
    StreamAttached,
    StreamDetached,
    StreamEnded,
)
from ._stream import OutgoingStream
from ._tools import ToolSet

if TYPE_CHECKING:  # types only: the sealer is made on first use (request_state_sealer)
    from ._replay import RequestStateSealer

__all__ = ["EndpointState", "PendingAsk"]


@attrs.frozen
class PendingAsk:
    """A request the server sent a client (handshake era), awaiting its response.

    Attributes:
        ask_id: the JSON-RPC id it went out with (unique in the session).
        stream: the call whose stream carried it; the answer resumes that call.
    """

    ask_id: str
    stream: OutgoingStream = attrs.field(eq=False)


@attrs.define(eq=False)
class EndpointState:
    """The state one endpoint serves from (see the module docstring).

    Attributes:
        config: behaviour and limits.
        tools: the tools offered (shared: tools added later are listed too).
        resources: the resources and resource templates offered (shared too).
        prompts: the prompts offered (shared too).
        event_store: where resumable streams' events are kept.
        sessions: the live sessions of the handshake era.
        clock: monotonic seconds, for session activity and expiry.
        subscriptions: open ``subscriptions/listen`` streams (stateless era).
        instance: a shared endpoint's id among the instances (``None``: not shared).
        journal: a shared endpoint's changes not yet taken (see ``_shared``).
        loaded: what the adapter read for the request being served.
        asks: requests tools sent their clients, not answered yet (handshake
            era), by (session id, JSON-RPC id).
        wall_clock: wall-clock seconds, for ``requestState`` expiry.
        sealer: seals the stateless era's ``requestState``, once made.
        ended: a shared endpoint's :class:`StreamEnded` changes, handed out
            after the journal (a call's final event is filed just after the
            call is done).
    """

    config: EndpointConfig
    tools: ToolSet
    event_store: EventStore
    sessions: SessionRegistry
    clock: Callable[[], float]
    resources: ResourceSet = attrs.Factory(ResourceSet)
    prompts: PromptSet = attrs.Factory(PromptSet)
    subscriptions: dict[OutgoingStream, None] = attrs.Factory(dict)
    instance: str | None = None
    journal: list[Change] | None = None
    loaded: Loaded = attrs.Factory(Loaded)
    ended: list[StreamEnded] = attrs.Factory(list)
    # Every call in flight, both eras (the server-wide cap counts them).
    running: dict[OutgoingStream, None] = attrs.Factory(dict)
    # Handshake-era calls no response carries, and since when (clock time);
    # oldest first, for the grace period.
    detached_calls: dict[OutgoingStream, float] = attrs.Factory(dict)
    # Requests sent to clients and not answered yet, by (session id, ask id).
    asks: dict[tuple[str | None, str], PendingAsk] = attrs.Factory(dict)
    ask_serial: int = 0
    # Wall-clock seconds (requestState expiry), and its sealer once needed.
    wall_clock: Callable[[], float] = time.time
    sealer: RequestStateSealer | None = None

    def request_state_sealer(self) -> RequestStateSealer:
        """The sealer of ``requestState``, made on first use (it loads ``cryptography``)."""
        if self.sealer is None:
            from ._replay import RequestStateSealer

            config = self.config
            self.sealer = RequestStateSealer(
                config.request_state_keys, config.request_state_ttl, self.wall_clock
            )
        return self.sealer

    def call_started(self, session: Session | None, stream: OutgoingStream) -> None:
        """A call now runs (in ``session``, if any) and its POST response will carry it."""
        self.running[stream] = None
        if session is None:
            return
        assert stream.request_id is not None
        session.in_flight[stream.request_id] = stream
        if self.journal is not None:
            self.journal.append(CallStarted(session.id, stream.request_id, stream.stream_id))
            self.journal.append(StreamAttached(session.id, stream.stream_id))

    def attached(self, session: Session, stream: OutgoingStream) -> None:
        """A response now carries ``stream`` (a GET stream, or a resumed call)."""
        self.detached_calls.pop(stream, None)
        if self.journal is not None:
            self.journal.append(StreamAttached(session.id, stream.stream_id))

    def detached(self, stream: OutgoingStream) -> None:
        """The response carrying ``stream`` ended."""
        if stream.kind == "call" and stream.detached and stream.session_id is not None:
            self.detached_calls[stream] = self.clock()
        if self.journal is not None and stream.session_id is not None:
            self.journal.append(StreamDetached(stream.session_id, stream.stream_id))

    def followed(self, session: Session, stream_id: str) -> None:
        """A response now follows ``stream_id`` from the shared store (``Resume.follow``)."""
        assert self.journal is not None
        session.following |= {stream_id}
        local = session.stream(stream_id)
        if local is not None:
            self.detached_calls.pop(local, None)  # its client is back, through the store
        self.journal.append(StreamAttached(session.id, stream_id))

    def unfollowed(self, session: Session, stream_id: str) -> None:
        """The response following ``stream_id`` ended."""
        assert self.journal is not None
        session.following -= {stream_id}
        local = session.stream(stream_id)
        if local is not None and local.detached:
            self.detached_calls[local] = self.clock()  # the grace period starts again
        self.journal.append(StreamDetached(session.id, stream_id))

    def session_of(self, stream: OutgoingStream) -> Session | None:
        """The live session a stream belongs to, if any."""
        return self.sessions.get_any(stream.session_id) if stream.session_id else None

    def call_done(self, stream: OutgoingStream) -> None:
        """A call's stream finished: it no longer counts, nor keeps its session busy."""
        self.running.pop(stream, None)
        self.detached_calls.pop(stream, None)
        session = self.session_of(stream)
        if session is None:
            return
        assert stream.request_id is not None
        if session.in_flight.get(stream.request_id) is stream:
            del session.in_flight[stream.request_id]
            if self.journal is not None:
                self.journal.append(CallEnded(session.id, stream.request_id))
                self.ended.append(StreamEnded(session.id, stream.stream_id))
            # Idle time starts now, not at the request that started the call.
            self.sessions.touch(session, self.clock())

    def listen_done(self, stream: OutgoingStream) -> None:
        """A listen stream's response ended: free the session's GET slot."""
        self.subscriptions.pop(stream, None)
        session = self.session_of(stream)
        if session is not None and session.listen is stream:
            session.listen = None
            if self.journal is not None:
                self.ended.append(StreamEnded(session.id, stream.stream_id))
            self.sessions.touch(session, self.clock())

    def discard(self, session: Session) -> tuple[OutgoingStream, ...]:
        """Cancel what a closed session had running and drop its events."""
        streams = tuple(session.in_flight.values())
        if session.listen is not None:
            streams += (session.listen,)
        for stream in streams:
            stream.cancel()
        session.in_flight.clear()
        session.listen = None
        self.event_store.forget_session(session.id)
        return streams
