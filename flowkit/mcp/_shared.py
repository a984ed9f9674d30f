"""State shared between instances: what the core needs read, and what it changed.

The core does no I/O, so it can neither fetch a session from a shared store
nor write one back. Instead, with ``Endpoint(shared=True)``, it works on a
local view and the adapter keeps that view in step with the store:

1. before a request, :meth:`Endpoint.state_keys <flowkit.mcp.Endpoint.state_keys>`
   names what the request touches (:class:`StateKeys`: the session, the
   stream a ``Last-Event-ID`` resumes, whether the session cap matters);
2. the adapter reads those from its store (:meth:`SharedStore.load`) and
   passes them in (``receive_request(..., loaded=...)``, a :class:`Loaded`);
3. after a request, and after a stream emitted, the adapter takes the core's
   changes (:meth:`Endpoint.take_changes`, :data:`Change` values) and writes
   them (:meth:`SharedStore.apply`), before sending the bytes they belong to,
   so no event a client has seen can be missing from a replay.

Every piece of shared state crosses here: session lookup and its principal
binding (:class:`SessionRecord`), the session cap (``Loaded.live_sessions``),
the running calls (``SessionRecord.running``, :class:`CallStarted` /
:class:`CallEnded`), which streams a response carries (``SessionRecord.attached``,
:class:`StreamAttached` / :class:`StreamDetached`), stored events and their replay (:class:`EventAppended`,
``Loaded.replay``), a stream's end (:class:`StreamEnded`, which a resume
elsewhere follows the store up to: ``Resume.follow``), and expiry (:class:`SessionTouched` refreshes; the store
expires). What must reach a call on another instance travels as a change
too (:class:`CancelForwarded`, :class:`AnswerForwarded`, and the instances
holding a closed session's calls), and so do notifications for every
instance's listeners (:class:`Broadcast`), and a session's ``resources/subscribe`` for the
instances carrying its streams (:class:`SubscriptionChanged`, answered by a
:func:`subscriptions_message`): the store carries them over its control bus,
and the receiving adapter hands them back to the core (:class:`Control`;
``Endpoint.receive_forwarded``, ``Endpoint.receive_broadcast``).
A follower of a call whose instance died reports it (``Follower.lost``), and
the core files the lost-call error (``Endpoint.call_lost``). Without
``shared`` none of this runs: the endpoint's own memory is the truth, at
full speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeAlias

import attrs

from ._jsonrpc import RequestId, encode_notification
from ._sse import EventId

__all__ = [
    "EVENTS_LOST",
    "SUBSCRIPTIONS",
    "AnswerForwarded",
    "Broadcast",
    "CallEnded",
    "CallStarted",
    "CancelForwarded",
    "Change",
    "Control",
    "EventAppended",
    "EventJournal",
    "Follower",
    "Loaded",
    "SessionClosed",
    "SessionRecord",
    "SessionSaved",
    "SessionTouched",
    "SharedStore",
    "StateKeys",
    "StreamAttached",
    "StreamDetached",
    "StreamEnded",
    "SubscriptionChanged",
    "events_lost",
    "subscriptions_message",
]

EVENTS_LOST = "flowkit/events-lost"
"""``data.error`` of the marker a GET stream files when its unstored events were dropped."""


def events_lost(message: str) -> dict[str, Any]:
    """The params of that marker: a ``notifications/message`` at level ``"error"``.

    A client reading the stream (or resuming it on any instance) sees where
    the gap is instead of a replay that silently skips events; it is sent
    whatever the client's log level, since it is about the stream itself.
    """
    return {
        "level": "error",
        "logger": "flowkit",
        "data": {"error": EVENTS_LOST, "message": message},
    }


@attrs.frozen
class SessionRecord:
    """A session as a store keeps it: everything another instance needs to serve it.

    Attributes:
        id: the session id.
        principal: who it is bound to (``None``: no authentication).
        version: the negotiated protocol revision.
        state: ``SessionState`` value (``"initializing"``, ``"ready"``).
        log_level: the ``logging/setLevel`` threshold's name.
        client_info: ``clientInfo`` from ``initialize``.
        client_capabilities: ``capabilities`` from ``initialize``.
        last_active: clock time of the last activity.
        running: request ids of the calls running on any instance.
        attached: ids of the streams a response carries, on any instance.
        subscriptions: the URIs of its ``resources/subscribe`` (2025 era).
        subscriptions_version: how many times the store changed them: of
            two views of them, the one with the larger version is the newer
            (a load and a :func:`subscriptions_message` may arrive in either
            order).
    """

    id: str
    principal: str | None
    version: str
    state: str
    log_level: str
    client_info: Any = attrs.field(default=None, eq=False)
    client_capabilities: Any = attrs.field(default=None, eq=False)
    last_active: float = 0.0
    running: frozenset[RequestId] = frozenset()
    attached: frozenset[str] = frozenset()
    subscriptions: frozenset[str] = frozenset()
    subscriptions_version: int = 0


@attrs.frozen
class StateKeys:
    """What a request touches, named from its head before the core runs.

    Attributes:
        session_id: the ``Mcp-Session-Id`` to load.
        resume: the ``Last-Event-ID`` of a GET, whose later events to load.
        count_sessions: the request may create a session, so the cap counts: a
            POST without ``Mcp-Session-Id`` whose ``Mcp-Method``, if any, is
            ``initialize``.
    """

    session_id: str | None = None
    resume: EventId | None = None
    count_sessions: bool = False


@attrs.frozen
class Loaded:
    """What the adapter read for a request's :class:`StateKeys`.

    Attributes:
        session: the stored session, ``None`` if the store has none.
        replay: the resumed stream's events after the id, ``None`` if the
            store has no such stream of this session.
        live_sessions: how many sessions are live across instances.
        replay_last: the seq of the replay's last event (the resumed id's
            when the replay is empty): where following the store goes on.
        replay_ended: the store holds the stream's end (:class:`StreamEnded`)
            within the replay: nothing will follow it.
    """

    session: SessionRecord | None = None
    replay: Sequence[bytes] | None = None
    live_sessions: int = 0
    replay_last: int = -1
    replay_ended: bool = False


@attrs.frozen
class SessionSaved:
    """A session was created or changed (state, log level): store the record."""

    record: SessionRecord


@attrs.frozen
class SessionTouched:
    """A session was used at ``now``: postpone its expiry."""

    session_id: str
    now: float


@attrs.frozen
class SessionClosed:
    """A session ended (DELETE, server close): forget it, its calls and its events."""

    session_id: str


@attrs.frozen
class CallStarted:
    """A call now runs in the session (its request id is taken)."""

    session_id: str
    request_id: RequestId
    stream_id: str


@attrs.frozen
class CallEnded:
    """A call finished or was cancelled (its request id is free again)."""

    session_id: str
    request_id: RequestId


@attrs.frozen
class StreamAttached:
    """A response now carries the stream (a resume elsewhere is a conflict, 409)."""

    session_id: str
    stream_id: str


@attrs.frozen
class StreamDetached:
    """The response carrying the stream ended (it may be resumed anywhere)."""

    session_id: str
    stream_id: str


@attrs.frozen
class EventAppended:
    """A resumable stream's event: keep it for replay (in order per stream)."""

    session_id: str
    stream_id: str
    seq: int
    data: bytes


@attrs.frozen
class StreamEnded:
    """Nothing more will be appended to the stream: a follower stops after its last event.

    Taken after the stream's final event (the response, or the core's error),
    or alone when it ended without one (a cancel, a GET stream's response
    ending).
    """

    session_id: str
    stream_id: str


@attrs.frozen
class CancelForwarded:
    """A ``notifications/cancelled`` for a call running on another instance: forward it.

    The store finds the instance from its registry of running calls (the
    call's stream id names it) and sends ``data``, the notification, on the
    control bus; that instance hands it to ``Endpoint.receive_forwarded``.
    """

    session_id: str
    request_id: RequestId
    data: bytes


@attrs.frozen
class AnswerForwarded:
    """A client's response to a request another instance's tool sent: forward it.

    The answered request's id names the stream that asked, hence
    ``instance``; ``data`` is the response as the client sent it.
    """

    session_id: str
    instance: str
    data: bytes


@attrs.frozen
class Control:
    """What the control bus brought this instance (``Endpoint.receive_forwarded``).

    Attributes:
        session_id: the session it concerns.
        data: a forwarded message (a cancel, an answer, the session's
            subscriptions: :func:`subscriptions_message`); ``None``: the
            session was deleted on another instance.
    """

    session_id: str
    data: bytes | None = None


@attrs.frozen
class Broadcast:
    """A notification for every instance's listeners (a list changed, a resource was updated).

    Taken from the instance that raised it, published to all the others;
    each hands it to ``Endpoint.receive_broadcast``, which writes it to its
    own GET and ``subscriptions/listen`` streams. ``data`` is the
    notification (``{"method": ..., "params": ...}``).
    """

    data: bytes


@attrs.frozen
class SubscriptionChanged:
    """A session's ``resources/subscribe`` (``subscribed``) or ``resources/unsubscribe``.

    The store adds or removes ``uri`` in the session's subscriptions (never
    touched by :class:`SessionSaved`, so a concurrent save cannot undo it),
    counts the change (``SessionRecord.subscriptions_version``), and sends the
    session's whole new set, with that version, to every instance carrying
    one of its streams, this one included (:func:`subscriptions_message` in a
    :class:`Control`): the instance holding the GET stream, where
    ``notifications/resources/updated`` goes, may be any of them.
    """

    session_id: str
    uri: str
    subscribed: bool


SUBSCRIPTIONS = "flowkit/subscriptions"
"""The method of the control message that carries a session's new subscriptions."""


def subscriptions_message(uris: Sequence[str], version: int) -> bytes:
    """``Control.data`` telling an instance a session's subscriptions after a change.

    ``version`` is the store's count (``SessionRecord.subscriptions_version``):
    an instance keeps the newest view, whichever arrives first.
    """
    return encode_notification(SUBSCRIPTIONS, {"uris": sorted(uris), "version": version})


Change: TypeAlias = (
    SessionSaved
    | SessionTouched
    | SessionClosed
    | CallStarted
    | CallEnded
    | StreamAttached
    | StreamDetached
    | EventAppended
    | StreamEnded
    | CancelForwarded
    | AnswerForwarded
    | Broadcast
    | SubscriptionChanged
)
"""Everything :meth:`Endpoint.take_changes` hands out."""


class SharedStore(Protocol):
    """The store an adapter drives for a shared endpoint (never called by the core)."""

    async def load(self, keys: StateKeys) -> Loaded:
        """Read what ``keys`` name."""

    async def apply(self, changes: Sequence[Change]) -> None:
        """Write ``changes``, in order."""

    def follow(
        self, session_id: str, stream_id: str, after: int
    ) -> AbstractAsyncContextManager[Follower]:
        """Follow a stream's stored events after seq ``after`` (``Resume.follow``)."""

    async def control(self, deliver: Callable[[Control | Broadcast], None]) -> None:
        """Forever: hand what other instances send this one to ``deliver``.

        The other half of :class:`CancelForwarded`, :class:`AnswerForwarded`,
        :class:`SubscriptionChanged` and :class:`SessionClosed`, which :meth:`apply` sends to the
        instances concerned, and of :class:`Broadcast`, which it sends to
        every other instance (the control bus).
        """


class Follower(Protocol):
    """A resumed stream's events as another instance (or this one) stores them.

    The adapter drives it: :meth:`read` what is stored after its cursor, and
    when nothing was, :meth:`wait` for a write, until :attr:`ended`. The
    store is the only truth: a wake-up only says "read again", so a lost one
    costs latency, never an event.
    """

    @property
    def ended(self) -> bool:
        """The stream's end was read, or the stream is gone (expired, its session deleted)."""

    @property
    def last_seq(self) -> int:
        """The seq of the last event read (the cursor)."""

    @property
    def lost(self) -> RequestId | None:
        """The call's instance died before the stream ended: the call's request id.

        The adapter then files the lost-call error (``Endpoint.call_lost``) in
        the store, and the next :meth:`read` returns it, with the end.
        """

    async def read(self) -> Sequence[bytes]:
        """The encoded events stored after the cursor (some, not always all); moves the cursor."""

    async def wait(self) -> None:
        """Until something may have been stored since the last :meth:`read` (bounded by a poll)."""


class EventJournal:
    """A shared endpoint's event store: it records each append as a change.

    Replay comes from the shared store (``Loaded.replay``), and a closed
    session's events go with its :class:`SessionClosed`, so this keeps
    nothing itself.
    """

    def __init__(self, journal: list[Change]) -> None:
        self._journal = journal

    def appender(self, session_id: str, stream_id: str) -> Callable[[int, bytes], None]:
        """``append(seq, event)`` for one stream."""
        journal = self._journal

        def append(seq: int, data: bytes) -> None:
            journal.append(EventAppended(session_id, stream_id, seq, data))

        return append

    def append(self, session_id: str, event_id: EventId, event: bytes) -> None:
        self.appender(session_id, event_id.stream_id)(event_id.seq, event)

    def replay_after(self, session_id: str, event_id: EventId) -> list[bytes] | None:
        return None  # read by the adapter: Loaded.replay

    def forget_session(self, session_id: str) -> None:
        return None  # written by the adapter: SessionClosed
