"""Sessions of the handshake era (2025-03-26 .. 2025-11-25).

A session is born from a successful ``initialize``, lives while the client
uses it and dies by DELETE, idle expiry or server shutdown. The lifecycle is a
table (state, event) -> next state; an event the table does not list for the
current state is refused. The registry bounds the number of live sessions and
reaps idle ones, because a server that only frees sessions on DELETE leaks one
per client that crashed or forgot ("Session Management"; the official SDKs
had exactly this leak).

Time is injected: :class:`SessionRegistry` never reads a clock itself, the
endpoint passes ``now`` from its ``clock``.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._errors import LocalProtocolError, too_many_client_sessions, too_many_sessions
from ._jsonrpc import RequestId
from ._levels import LOG_LEVELS, LogThreshold
from ._shared import Change, SessionClosed, SessionRecord, SessionSaved, SessionTouched
from ._versions import VersionPolicy

if TYPE_CHECKING:
    from ._stream import OutgoingStream

__all__ = ["Session", "SessionEvent", "SessionRegistry", "SessionState"]


class SessionState(enum.Enum):
    """Where a session is in its lifecycle."""

    INITIALIZING = "initializing"  # initialize answered, waiting for initialized
    READY = "ready"  # notifications/initialized received
    CLOSED = "closed"  # deleted, expired or closed by the server


class SessionEvent(enum.Enum):
    """What can happen to a session."""

    INITIALIZED = "initialized"
    REQUEST = "request"
    CLOSE = "close"


_S, _E = SessionState, SessionEvent
# One empty frozenset for every session's empty views: since CPython 3.10
# ``frozenset()`` is no longer a singleton, and each one is 216 bytes.
_NONE: frozenset[Any] = frozenset()
SESSION_TRANSITIONS: dict[tuple[SessionState, SessionEvent], SessionState] = {
    (_S.INITIALIZING, _E.INITIALIZED): _S.READY,
    (_S.INITIALIZING, _E.REQUEST): _S.INITIALIZING,
    (_S.INITIALIZING, _E.CLOSE): _S.CLOSED,
    (_S.READY, _E.INITIALIZED): _S.READY,  # a repeated notification is harmless
    (_S.READY, _E.REQUEST): _S.READY,
    (_S.READY, _E.CLOSE): _S.CLOSED,
}
"""The session lifecycle. Nothing leaves CLOSED: a closed session is gone."""


class Session:
    """One client session: negotiated revision, principal, in-flight requests.

    Mutable, and owned by the :class:`SessionRegistry`; the adapter only reads
    it (through actions) and reports back through the endpoint.
    """

    __slots__ = (
        "_next_stream",
        "attached_elsewhere",
        "client",
        "client_capabilities",
        "client_info",
        "created",
        "following",
        "id",
        "in_flight",
        "last_active",
        "listen",
        "log_threshold",
        "policy",
        "principal",
        "resource_subscriptions",
        "running_elsewhere",
        "state",
        "subscriptions_version",
    )

    def __init__(
        self,
        session_id: str,
        *,
        principal: str | None,
        policy: VersionPolicy,
        log_level: str,
        now: float,
        client_info: Any = None,
        client_capabilities: Any = None,
        client: str | None = None,
    ) -> None:
        self.id = session_id
        self.client = client  # who the per-client cap counts it for
        self.principal = principal
        self.policy = policy
        self.log_threshold = LogThreshold(log_level)
        self.state = SessionState.INITIALIZING
        self.created = now
        self.last_active = now
        self.client_info = client_info
        self.client_capabilities = client_capabilities
        self.in_flight: dict[RequestId, OutgoingStream] = {}
        self.listen: OutgoingStream | None = None
        # URIs of resources/subscribe, told of updates on the GET stream. A
        # shared store carries them (SessionRecord.subscriptions); the version
        # is its count of changes, which orders the views that reach here.
        # Frozen, replaced on a change: most sessions never subscribe, and an
        # empty set is 216 bytes per session (_NONE is shared).
        self.resource_subscriptions: frozenset[str] = _NONE
        self.subscriptions_version = 0
        # Request ids running on other instances (a shared endpoint's view).
        self.running_elsewhere: frozenset[RequestId] = _NONE
        self.attached_elsewhere: frozenset[str] = _NONE  # stream ids
        # Streams a response here follows from a shared store (Resume.follow).
        self.following: frozenset[str] = _NONE  # frozen, as above
        self._next_stream = 0

    @property
    def version(self) -> str:
        """The negotiated protocol revision."""
        return self.policy.version

    @property
    def busy(self) -> bool:
        """Work or a connection is outstanding (a shared store's idle rule)."""
        return bool(self.in_flight) or self.listen is not None or bool(self.following)

    @property
    def attached(self) -> bool:
        """A client is connected: a GET stream, or a response carrying a call.

        Idle expiry waits for this, not for the calls: a session whose client
        vanished expires whatever it still has running, and its calls are
        cancelled (a disconnect is not a cancel in this era, so nothing else
        would ever end them).
        """
        if self.listen is not None or self.attached_elsewhere or self.following:
            return True
        return any(not stream.detached for stream in self.in_flight.values())

    def stream(self, stream_id: str) -> OutgoingStream | None:
        """The call running here whose stream is ``stream_id``, if any."""
        return next((s for s in self.in_flight.values() if s.stream_id == stream_id), None)

    def handle(self, event: SessionEvent) -> None:
        """Apply ``event`` through the transition table."""
        try:
            self.state = SESSION_TRANSITIONS[self.state, event]
        except KeyError:
            raise LocalProtocolError(
                f"session event {event.value} is invalid in state {self.state.value}"
            ) from None

    def new_stream_id(self, instance: str | None = None) -> str:
        """A stream id unique within this session (so event ids are too).

        ``instance`` (a shared endpoint's id) keeps ids of streams started on
        different instances apart.
        """
        self._next_stream += 1
        if instance is None:
            return str(self._next_stream)
        return f"{instance}.{self._next_stream}"

    def to_record(self) -> SessionRecord:
        """The session as a shared store keeps it."""
        rank = self.log_threshold.rank
        return SessionRecord(
            id=self.id,
            principal=self.principal,
            version=self.policy.version,
            state=self.state.value,
            log_level=next(name for name, r in LOG_LEVELS.items() if r == rank),
            client_info=self.client_info,
            client_capabilities=self.client_capabilities,
            last_active=self.last_active,
            running=frozenset(self.in_flight) | self.running_elsewhere,
            attached=self.attached_elsewhere,
            subscriptions=self.resource_subscriptions,
            subscriptions_version=self.subscriptions_version,
        )

    def update(self, record: SessionRecord) -> None:
        """Take what a shared store says (another instance may have changed it)."""
        if record.state == SessionState.READY.value and self.state is SessionState.INITIALIZING:
            self.handle(SessionEvent.INITIALIZED)  # notifications/initialized went elsewhere
        self.log_threshold.set(record.log_level)
        self.last_active = max(self.last_active, record.last_active)
        self.running_elsewhere = record.running - set(self.in_flight)
        # Carried here: a response writing a local call, the GET stream, a
        # follower. A local call no response here carries may be followed
        # elsewhere: it stays in attached_elsewhere (a resume is then 409).
        local = {s.stream_id for s in self.in_flight.values() if not s.detached}
        local |= self.following
        if self.listen is not None:
            local.add(self.listen.stream_id)
        self.attached_elsewhere = record.attached - local
        self.take_subscriptions(record.subscriptions, record.subscriptions_version)

    def take_subscriptions(self, uris: Iterable[str], version: int) -> None:
        """A shared store's view of the subscriptions, taken unless an older one.

        Views come from loads and from the control bus, in either order: the
        one with the larger version (the store's count of changes) wins. A
        change made here keeps the version until the store's answer comes
        back, so a load or a message no older than it replaces it.
        """
        if version >= self.subscriptions_version:
            self.resource_subscriptions = frozenset(uris) or _NONE
            self.subscriptions_version = version


def _visible_ascii(value: str) -> bool:
    return bool(value) and value.isascii() and all("!" <= c <= "~" for c in value)


class SessionRegistry:
    """The live sessions, with a cap and idle expiry.

    Args:
        new_session_id: CSPRNG id factory; ids must be visible ASCII.
        idle_timeout: seconds a session may sit idle (no request, no client
            attached: no open GET stream, no response carrying a call) before
            :meth:`expire` reaps it, running calls and all. A shared registry
            (``journal``) drops only idle local copies with nothing in flight.
        max_sessions: live sessions allowed; ``create`` beyond it fails 503.
        busy_retry_after: ``Retry-After`` seconds when full and no idle session
            is about to expire.
        handshake_timeout: seconds a session may stay INITIALIZING (its client
            never sent ``notifications/initialized``) with no client attached
            before it expires, however recently it was used: a flood of
            unfinished handshakes must not hold the cap for the idle timeout.
            ``None``: such sessions live as long as any other.
    """

    def __init__(
        self,
        *,
        new_session_id: Callable[[], str],
        idle_timeout: float,
        max_sessions: int,
        busy_retry_after: int = 30,
        handshake_timeout: float | None = None,
        max_sessions_per_client: int | None = None,
        journal: list[Change] | None = None,
    ) -> None:
        self._new_id = new_session_id
        # A shared endpoint's record of what changed (see _shared); None: none kept.
        self.journal = journal
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._busy_retry_after = busy_retry_after
        # Ordered by last activity, least recent first (move_to_end on touch).
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self.handshake_timeout = handshake_timeout
        # Sessions created and perhaps still INITIALIZING, oldest first; those
        # that completed the handshake or closed are dropped lazily.
        self._handshaking: OrderedDict[str, Session] = OrderedDict()
        self.max_sessions_per_client = max_sessions_per_client
        self._by_client: dict[str, dict[str, Session]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def create(self, now: float, *, live_elsewhere: int = 0, **kwargs: Any) -> Session:
        """Register a new session, reaping expired ones first if full.

        ``live_elsewhere`` is a shared store's count of live sessions, which
        the cap counts instead when it is larger than the local one.

        Raises:
            RemoteProtocolError: 503 with ``Retry-After`` when at the cap.
        """
        if max(len(self._sessions), live_elsewhere) >= self.max_sessions:
            self.expire(now)
            if max(len(self._sessions), live_elsewhere) >= self.max_sessions:
                deadline = self.next_deadline()
                retry = (
                    max(1, math.ceil(deadline - now))
                    if deadline is not None
                    else self._busy_retry_after
                )
                raise too_many_sessions(retry)
        client = kwargs.get("client")
        limit = self.max_sessions_per_client
        if (
            client is not None
            and limit is not None
            and len(self._by_client.get(client, ())) >= limit
        ):
            self.expire(now)
            held = self._by_client.get(client, {})
            if len(held) >= limit:
                deadlines = [d for d in map(self._deadline, held.values()) if d is not None]
                retry = (
                    max(1, math.ceil(min(deadlines) - now)) if deadlines else self._busy_retry_after
                )
                raise too_many_client_sessions(limit, retry)
        for _ in range(8):
            session_id = self._new_id()
            if not _visible_ascii(session_id):
                raise LocalProtocolError(f"session id {session_id!r} is not visible ASCII")
            if session_id not in self._sessions:
                break
        else:
            raise LocalProtocolError("new_session_id keeps returning ids already in use")
        session = Session(session_id, now=now, **kwargs)
        self._sessions[session_id] = session
        if self.handshake_timeout is not None:
            self._handshaking[session_id] = session
        if client is not None and limit is not None:
            self._by_client.setdefault(client, {})[session_id] = session
        self.saved(session)
        return session

    def saved(self, session: Session) -> None:
        """Note a changed session for a shared store."""
        if self.journal is not None:
            self.journal.append(SessionSaved(session.to_record()))

    def adopt(self, session_id: str, record: SessionRecord | None, policy: VersionPolicy) -> None:
        """Bring the local view of one session in line with a shared store's record.

        ``None``: the store has no such session (deleted or expired anywhere),
        so an idle local copy goes too and the request is refused as for an
        unknown session. A record unknown here becomes a local session.
        """
        session = self._sessions.get(session_id)
        if record is None:
            if session is not None and not session.busy:
                del self._sessions[session_id]
                session.handle(SessionEvent.CLOSE)
            return
        if session is None:
            session = Session(
                record.id,
                principal=record.principal,
                policy=policy,
                log_level=record.log_level,
                now=record.last_active,
                client_info=record.client_info,
                client_capabilities=record.client_capabilities,
            )
            self._sessions[record.id] = session
        session.update(record)

    def get(self, session_id: str, principal: str | None) -> Session | None:
        """The live session with this id *owned by this principal*, or None.

        Another principal's id is treated as unknown, so ids leaked across
        users are useless (session hijacking mitigation).
        """
        session = self._sessions.get(session_id)
        if session is None or session.principal != principal:
            return None
        return session

    def get_any(self, session_id: str) -> Session | None:
        """The live session with this id whoever owns it (server-side use only)."""
        return self._sessions.get(session_id)

    def touch(self, session: Session, now: float) -> None:
        """Record activity, postponing idle expiry."""
        session.last_active = now
        self._sessions.move_to_end(session.id)
        if self.journal is not None:
            self.journal.append(SessionTouched(session.id, now))

    def close(self, session_id: str) -> Session | None:
        """Remove a session (DELETE, expiry, shutdown); None if unknown."""
        session = self._sessions.pop(session_id, None)
        if session is not None:
            self._forget_client(session)
            session.handle(SessionEvent.CLOSE)
            if self.journal is not None:
                self.journal.append(SessionClosed(session_id))
        return session

    def expire(self, now: float) -> list[Session]:
        """Remove and return every idle session whose deadline has passed.

        The deadline is ``idle_timeout`` after the last activity, or
        ``handshake_timeout`` after creation for a session still INITIALIZING.
        """
        expired = self._unfinished(now)
        unfinished = {session.id for session in expired}
        limit = now - self.idle_timeout
        for session in self._sessions.values():
            if session.last_active > limit:
                break  # least recently active first: the rest are younger
            if self._idle(session) and session.id not in unfinished:
                expired.append(session)
        for session in expired:
            if self.journal is None:
                self.close(session.id)
            else:
                # Shared: the store expires sessions (a copy idle here may be
                # busy elsewhere); the local copy is only dropped.
                del self._sessions[session.id]
                self._forget_client(session)
                session.handle(SessionEvent.CLOSE)
        return expired

    def _forget_client(self, session: Session) -> None:
        held = self._by_client.get(session.client) if session.client is not None else None
        if held is not None:
            held.pop(session.id, None)
            if not held:
                del self._by_client[session.client]  # type: ignore[arg-type]

    def _deadline(self, session: Session) -> float | None:
        """When ``session`` will expire if nothing happens (``None``: attached)."""
        if not self._idle(session):
            return None
        deadline = session.last_active + self.idle_timeout
        if self.handshake_timeout is not None and session.state is SessionState.INITIALIZING:
            deadline = min(deadline, session.created + self.handshake_timeout)
        return deadline

    def _unfinished(self, now: float) -> list[Session]:
        """The idle sessions whose handshake did not complete in time (oldest first)."""
        if self.handshake_timeout is None:
            return []
        limit = now - self.handshake_timeout
        due: list[Session] = []
        for session_id, session in list(self._handshaking.items()):
            if session.state is not SessionState.INITIALIZING or session_id not in self._sessions:
                del self._handshaking[session_id]  # completed, or closed otherwise
            elif session.created > limit:
                break  # oldest first: the rest are younger
            elif self._idle(session):
                del self._handshaking[session_id]
                due.append(session)
        if not self._handshaking:
            self._handshaking = OrderedDict()  # a dict keeps its peak table when emptied
        return due

    def next_deadline(self) -> float | None:
        """When the next idle session will expire (clock time), if any.

        Sessions are kept least-recently-active first, so this stops at the
        first idle one; unfinished handshakes are kept oldest first.
        """
        deadlines: list[float] = []
        for session in self._sessions.values():
            if self._idle(session):
                deadlines.append(session.last_active + self.idle_timeout)
                break
        if self.handshake_timeout is not None:
            for session_id, session in list(self._handshaking.items()):
                if (
                    session.state is not SessionState.INITIALIZING
                    or session_id not in self._sessions
                ):
                    del self._handshaking[session_id]
                elif self._idle(session):
                    deadlines.append(session.created + self.handshake_timeout)
                    break
        return min(deadlines, default=None)

    def _idle(self, session: Session) -> bool:
        """May ``session`` expire once its idle time is up?"""
        if self.journal is not None:
            return not session.busy  # a local copy; its calls may be carried elsewhere
        return not session.attached

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))
