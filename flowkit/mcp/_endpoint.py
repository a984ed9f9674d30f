"""The MCP endpoint: HTTP requests in, actions out (like h11's ``Connection``).

One :class:`Endpoint` serves every client of one MCP endpoint path. The
adapter hands it each request's method, headers and body; it answers with an
:class:`~flowkit.mcp.Action` and never performs I/O, reads a clock it was not
given, or raises for anything the peer did. Refusals are data
(:class:`~flowkit.mcp.Reply` with the status the spec asks for), so the whole
surface can be fuzzed without an event loop.

Request routing is tables too: JSON-RPC methods map to plain handler
functions (``_methods``), and the per-revision differences come from
:class:`~flowkit.mcp.VersionPolicy`. Everything the endpoint keeps between
requests is one :class:`~flowkit.mcp._state.EndpointState` (``state``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import orjson

from ._actions import (
    Action,
    Answer,
    Cancel,
    OpenListenStream,
    Reply,
    Resume,
    StartCall,
    error_reply,
)
from ._admission import RawHeaders, admit
from ._asks import ClientRequest
from ._config import EndpointConfig
from ._connection import Connection
from ._errors import (
    SERVER_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    LocalProtocolError,
    RemoteProtocolError,
    call_lost,
    invalid_request,
    listen_conflict,
    method_not_allowed,
    method_not_found,
    request_in_flight,
    session_required,
    stream_conflict,
    too_large,
    unknown_event_id,
)
from ._events import EventStore, InMemoryEventStore
from ._features import PROMPTS_LIST_CHANGED, RESOURCE_UPDATED, RESOURCES_LIST_CHANGED
from ._headers import (
    RequestHead,
    client_address,
    may_open_session,
    parse_head,
)
from ._jsonrpc import (
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    encode_error,
    encode_notification,
    encode_result,
    parse_message,
)
from ._levels import LOG_LEVELS
from ._methods import (
    HANDSHAKE_METHODS,
    OPENS_SESSION,
    STATELESS_METHODS,
    TOOLS_LIST_CHANGED,
    Handler,
    RequestContext,
)
from ._prompts import PromptSet
from ._resources import ResourceSet
from ._sessions import Session, SessionEvent, SessionRegistry
from ._shared import (
    SUBSCRIPTIONS,
    AnswerForwarded,
    Broadcast,
    CancelForwarded,
    Change,
    Control,
    EventAppended,
    EventJournal,
    Loaded,
    SessionRecord,
    StateKeys,
    StreamEnded,
    events_lost,
)
from ._sse import EventId, encode_event, parse_event_id
from ._state import EndpointState, PendingAsk
from ._stateless import (
    is_modern,
    validate_modern,
)
from ._stream import SSE_HEADERS, OutgoingStream
from ._tools import Tool, ToolSet
from ._versions import LATEST_HANDSHAKE_VERSION, VERSIONS, VersionPolicy

__all__ = ["Endpoint"]

_ACCEPTED = Reply(202)
_STDIO_HEAD = RequestHead("POST", {}, binding="stdio")  # no header layer at all

ListKind = Literal["tools", "resources", "prompts"]
# kind -> (the config flag advertising listChanged, notification, listen filter field)
_LIST_CHANGES: Mapping[str, tuple[str, str, str]] = {
    "tools": ("tools_list_changed", TOOLS_LIST_CHANGED, "toolsListChanged"),
    "resources": ("resources_list_changed", RESOURCES_LIST_CHANGED, "resourcesListChanged"),
    "prompts": ("prompts_list_changed", PROMPTS_LIST_CHANGED, "promptsListChanged"),
}


def _notify(
    targets: Iterable[OutgoingStream], method: str, params: Mapping[str, Any] | None = None
) -> tuple[tuple[OutgoingStream, bytes], ...]:
    events = ((stream, stream.notify(method, params)) for stream in targets)
    return tuple((stream, data) for stream, data in events if data)


def _default_session_id() -> str:
    # 32 bytes from the OS CSPRNG, URL-safe base64: visible ASCII only.
    return secrets.token_urlsafe(32)


def _cancellation(
    message: Notification,
    running: Callable[[RequestId], OutgoingStream | None],
    session_id: str | None,
) -> Action:
    """``notifications/cancelled``: cancel the named request if it still runs.

    Malformed or unknown cancellations are ignored ("Error Handling").
    """
    request_id = message.params.get("requestId")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return _ACCEPTED
    stream = running(request_id)
    if stream is None:
        return _ACCEPTED
    stream.cancel()
    return Cancel(session_id, request_id, stream, _ACCEPTED)


def _encode_response(message: Response) -> bytes:
    """A client's response as it came (for forwarding)."""
    if message.error is not None:
        return orjson.dumps({"jsonrpc": "2.0", "id": message.id, "error": message.error})
    return encode_result(message.id, message.result) if message.id is not None else b""


def _asking_instance(ask_id: str) -> str | None:
    """The instance whose tool sent the request ``ask_id`` (``flowkit-<instance>.<n>-<serial>``)."""
    stream_id = ask_id.removeprefix("flowkit-").rpartition("-")[0]
    instance, dot, _ = stream_id.rpartition(".")
    return instance if ask_id.startswith("flowkit-") and dot else None


def _request_id_of(body: bytes) -> RequestId | None:
    """The id of the JSON-RPC request in ``body``, if it is one (best effort)."""
    try:
        message = parse_message(body)
    except RemoteProtocolError:
        return None
    return message.id if isinstance(message, Request) else None


class Endpoint:
    """The sans-IO MCP server for one endpoint path.

    Args:
        config: behaviour and limits; defaults are safe for a local server.
        tools: the tools offered (a :class:`~flowkit.mcp.ToolSet` is shared,
            so tools added to it later are listed too).
        resources: the resources and templates offered (none by default).
        prompts: the prompts offered (none by default).
        clock: monotonic seconds; drives session expiry. Injected so tests
            (and trio's clock in the adapter) control time.
        new_session_id: CSPRNG session-id factory.
        event_store: where SSE events are kept for resumption; a bounded
            :class:`~flowkit.mcp.InMemoryEventStore` by default.
        wall_clock: wall-clock seconds, for the expiry of a sealed
            ``requestState`` (which another instance may open).
        instance: makes the endpoint *shared*: its state lives in a store
            the adapter drives (see ``flowkit.mcp._shared``), and this id,
            unique among the instances sharing the store, keeps their stream
            ids apart. ``None`` (the default): this process's memory is the
            truth.
    """

    def __init__(
        self,
        config: EndpointConfig | None = None,
        tools: ToolSet | Iterable[Tool] = (),
        *,
        resources: ResourceSet | None = None,
        prompts: PromptSet | None = None,
        clock: Callable[[], float] = time.monotonic,
        new_session_id: Callable[[], str] = _default_session_id,
        event_store: EventStore | None = None,
        instance: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        config = config if config is not None else EndpointConfig()
        if config.default_log_level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {config.default_log_level!r}")
        journal: list[Change] | None = None
        if instance is not None:
            journal = []
            event_store = EventJournal(journal)
        self.state = EndpointState(
            config=config,
            tools=tools if isinstance(tools, ToolSet) else ToolSet(list(tools)),
            resources=resources if resources is not None else ResourceSet(),
            prompts=prompts if prompts is not None else PromptSet(),
            event_store=event_store if event_store is not None else InMemoryEventStore(),
            sessions=SessionRegistry(
                new_session_id=new_session_id,
                idle_timeout=config.session_idle_timeout,
                max_sessions=config.max_sessions,
                busy_retry_after=config.busy_retry_after,
                handshake_timeout=config.handshake_timeout,
                max_sessions_per_client=config.max_sessions_per_client,
                journal=journal,
            ),
            clock=clock,
            instance=instance,
            journal=journal,
            wall_clock=wall_clock,
        )

    @property
    def config(self) -> EndpointConfig:
        """Behaviour and limits."""
        return self.state.config

    @property
    def tools(self) -> ToolSet:
        """The tools offered."""
        return self.state.tools

    @property
    def resources(self) -> ResourceSet:
        """The resources and resource templates offered."""
        return self.state.resources

    @property
    def prompts(self) -> PromptSet:
        """The prompts offered."""
        return self.state.prompts

    @property
    def sessions(self) -> SessionRegistry:
        """The live sessions (handshake era)."""
        return self.state.sessions

    @property
    def event_store(self) -> EventStore:
        """Where resumable streams' events are kept."""
        return self.state.event_store

    # -- public API -------------------------------------------------------------

    def check_request_head(
        self, method: str, headers: RawHeaders, principal: str | None = None
    ) -> Reply | None:
        """Refuse a request from its head alone, before its body is read.

        Returns:
            The refusal to send, or ``None`` if the body should be read and
            passed to :meth:`receive_request` (which repeats these checks, so
            calling this first is an optimisation, not a requirement).
        """
        try:
            head = parse_head(method, headers)
            # A shared endpoint learns its sessions from what the adapter loads.
            sessions = self.sessions if self.state.journal is None else None
            admit(head, headers, principal, self.config, sessions, before_body=True)
        except RemoteProtocolError as exc:
            return error_reply(exc)
        return None

    def receive_request(
        self,
        method: str,
        headers: RawHeaders,
        body: bytes = b"",
        principal: str | None = None,
        loaded: Loaded | None = None,
        peer: str | None = None,
    ) -> Action:
        """Handle one HTTP request to the MCP endpoint.

        Args:
            method: the HTTP method.
            headers: raw ``(name, value)`` pairs as ASGI gives them.
            body: the complete request body (empty for GET/DELETE).
            principal: who the adapter authenticated, if it does so itself;
                sessions are bound to it. Ignored when the config has an
                ``authenticate`` hook, whose result wins.
            loaded: a shared endpoint's state for this request, read by the
                adapter for :meth:`state_keys`.
            peer: the remote address of the connection (ASGI's
                ``scope["client"][0]``), for ``max_sessions_per_client``
                when there is no principal; ``X-Forwarded-For`` counts only
                from ``config.trusted_proxies``.

        Returns:
            What to do. Never raises for anything the peer sent.
        """
        try:
            head = parse_head(method, headers)
            self._adopt(head, loaded if loaded is not None else Loaded())
            try:
                principal, session = admit(head, headers, principal, self.config, self.sessions)
            except RemoteProtocolError as exc:
                if exc.code != UNSUPPORTED_PROTOCOL_VERSION or head.method != "POST":
                    raise
                raise exc.with_request_id(_request_id_of(body)) from exc
            if head.method == "POST":
                client = principal
                if client is None:
                    client = client_address(peer, head, self.config.trusted_proxies)
                return self._post(head, body, principal, session, client)
            assert session is not None  # admit() requires a session for GET/DELETE
            if head.method == "GET":
                return self._get(head, session)
            return self._delete(session)
        except RemoteProtocolError as exc:
            return error_reply(exc)

    def open_connection(self) -> Connection:
        """A new message channel (one stdio peer) for :meth:`receive_message`."""
        return Connection()

    def receive_message(self, data: bytes, connection: Connection) -> Action:
        """Handle one message from a channel without HTTP (stdio: one line).

        The binding has no header layer (2026-07-28 ``transports/stdio``):
        there is no Host, Origin, Accept or session header to judge and
        nothing mirrored to compare, so the connection is the session (its
        ``initialize`` opens it) and a stateless-era request is recognised by
        its ``_meta`` alone. Cancellation is ``notifications/cancelled`` in
        both eras. A :class:`Reply`'s body, if any, is the one line to write
        (its status and headers mean nothing here); the streams of a
        :class:`StartCall` or :class:`OpenListenStream` produce lines.
        Notifications and client responses are never answered, not even
        when refused: JSON-RPC answers requests only.

        Args:
            data: one message, without its newline; cut at
                ``config.max_body_size + 1`` bytes when longer (the
                adapter need not read an oversized line whole to have it
                refused).
            connection: the channel it came on (:meth:`open_connection`).

        Returns:
            What to do. Never raises for anything the peer sent.
        """
        try:
            if len(data) > self.config.max_body_size:
                raise too_large(self.config.max_body_size)
            message = parse_message(data)
            if is_modern(_STDIO_HEAD, message, self.config.versions):
                return self._stateless_message(message, connection)
            session = (
                self.sessions.get_any(connection.session_id)
                if connection.session_id is not None
                else None
            )
            if not isinstance(message, Request):
                if session is None:
                    return _ACCEPTED  # nothing to answer, no session to apply it to
                return self._message(_STDIO_HEAD, message, None, session)
            if message.method in OPENS_SESSION:
                if session is not None:
                    raise invalid_request(
                        "initialize was already received on this connection", message.id
                    )
                action = self._message(_STDIO_HEAD, message, None, None)
                if isinstance(action, Reply):
                    created = dict(action.headers).get(b"mcp-session-id")
                    if created is not None:
                        self._connect(connection, created.decode("ascii"))
                return action
            if session is None:
                raise invalid_request(
                    "the first request must be initialize (or carry "
                    '"_meta" with the stateless-era protocol version)',
                    message.id,
                )
            return self._message(_STDIO_HEAD, message, None, session)
        except RemoteProtocolError as exc:
            return error_reply(exc)

    def _connect(self, connection: Connection, session_id: str) -> None:
        """Bind a channel to the session its ``initialize`` opened.

        The channel also carries the session's server notifications: its
        ``listen`` stream stands where the GET stream stands over HTTP (so
        :meth:`list_changed` covers it, and the session, never idle while
        the channel is open, does not expire).
        """
        session = self.sessions.get_any(session_id)
        assert session is not None
        connection.session_id = session_id
        connection.listen = session.listen = OutgoingStream(
            kind="listen",
            stream_id=session.new_stream_id(self.state.instance),
            session_id=session_id,
            binding="stdio",
        )

    def _stateless_message(self, message: Message, connection: Connection) -> Action:
        """A stateless-era message on a channel: cancellation by notification."""
        if isinstance(message, Notification):
            if message.method == "notifications/cancelled":
                return _cancellation(message, connection.running, None)
            return _ACCEPTED
        if isinstance(message, Request) and connection.running(message.id) is not None:
            raise request_in_flight(message.id)
        action = self._stateless(_STDIO_HEAD, message)
        if isinstance(action, StartCall | OpenListenStream):
            connection.started(action.stream)
        return action

    def state_keys(self, method: str, headers: RawHeaders) -> StateKeys | None:
        """What a shared endpoint needs read before :meth:`receive_request`.

        Returns:
            The session, resumed stream and cap the request touches, for the
            adapter to load from its store and pass as ``loaded``; ``None``
            when the endpoint is not shared or the head is refused anyway.
        """
        if self.state.journal is None:
            return None
        try:
            head = parse_head(method, headers)
        except RemoteProtocolError:
            return None
        session_id = head.get("mcp-session-id")
        last_event_id = head.get("last-event-id") if head.method == "GET" else None
        return StateKeys(
            session_id=session_id,
            resume=parse_event_id(last_event_id) if last_event_id is not None else None,
            # The count is a store read (a Redis round trip): only for a head
            # that may carry an initialize, not for every stateless call.
            count_sessions=head.method == "POST" and may_open_session(head),
        )

    def has_changes(self) -> bool:
        """Are there changes :meth:`take_changes` would return (without taking them)?"""
        journal = self.state.journal
        return journal is not None and bool(journal or self.state.ended)

    def take_changes(self) -> tuple[Change, ...]:
        """A shared endpoint's changes since the last call, for the adapter to write.

        Take them after every request and before writing bytes a stream
        produced: an event is stored before any client can see it.
        """
        journal, ended = self.state.journal, self.state.ended
        if journal is None or not (journal or ended):
            return ()
        changes = (*journal, *ended)  # a stream's end after its final event
        journal.clear()
        ended.clear()
        return changes

    def abandon_streams(
        self, streams: set[tuple[str, str]], message: str
    ) -> tuple[OutgoingStream, ...]:
        """A shared store lost these streams' events (``(session id, stream id)``): end them.

        The adapter could not store them and will not keep them any longer
        (its bound while the store is unreachable). Replaying such a stream
        would skip events without saying so; so each call ends with a
        JSON-RPC error (-32000, ``message``) filed after what was stored, for
        the client that resumes, and each GET stream files the marker
        :data:`~flowkit.mcp._shared.EVENTS_LOST` (a ``notifications/message`` at level
        ``"error"``, whatever the client's log level) and is cancelled. A
        stream that has already ended here is not given up: nothing can be
        filed after its end, so the adapter must keep its events (they no
        longer grow).

        Returns:
            The streams given up, whose work (and response) the adapter must
            now stop and whose kept events it may drop; no other.
        """
        stopped: list[OutgoingStream] = []
        for session_id, stream_id in streams:
            session = self.sessions.get_any(session_id)
            if session is None:
                continue
            stream = session.stream(stream_id)
            if stream is None and session.listen is not None:
                stream = session.listen if session.listen.stream_id == stream_id else None
            if stream is None or stream.finished:
                continue
            if stream.kind == "call":
                stream.error(SERVER_ERROR, message)
            else:
                stream.notify("notifications/message", events_lost(message))
                stream.cancel()
            stopped.append(stream)
        return tuple(stopped)

    def refresh(self, record: SessionRecord) -> None:
        """A shared store's newer view of a session held here (the adapter's heartbeat).

        A call of this instance that no response here carries may be
        followed by a resume on another instance (its stream is in
        ``record.attached``): its client is back, so its grace period
        (``detached_call_grace``) starts again now, as it would here.
        """
        session = self.sessions.get_any(record.id)
        if session is None:
            return
        session.update(record)
        now = self.state.clock()
        detached = self.state.detached_calls
        for stream in session.in_flight.values():
            if stream in detached and stream.stream_id in session.attached_elsewhere:
                del detached[stream]
                detached[stream] = now  # newest last: expire() reads them oldest first

    def follow_finished(self, session_id: str, stream_id: str) -> None:
        """Report that the response following a stream (``Resume.follow``) has ended.

        The stream may be resumed again (anywhere), and the session's idle
        time starts now.
        """
        session = self.sessions.get_any(session_id)
        if session is None or stream_id not in session.following:
            return
        self.state.unfollowed(session, stream_id)
        self.sessions.touch(session, self.state.clock())

    def _adopt(self, head: RequestHead, loaded: Loaded) -> None:
        self.state.loaded = loaded  # what this request is served from, and only this one
        session_id = head.get("mcp-session-id")
        if session_id is None or self.state.journal is None:
            return
        record = loaded.session
        policy = self.config.versions.get(record.version) if record is not None else None
        if record is not None and policy is None:
            record = None  # a revision this instance does not serve: unknown here
        self.sessions.adopt(session_id, record, policy or VERSIONS[LATEST_HANDSHAKE_VERSION])

    def stream_finished(self, stream: OutgoingStream, *, disconnected: bool = False) -> bool:
        """Report that the HTTP response carrying ``stream`` has ended.

        Args:
            stream: the stream whose connection ended.
            disconnected: the client went away before the stream finished.

        Returns:
            ``True`` if the adapter must now cancel the stream's work: only
            in revisions where a disconnect *is* a cancel. In the handshake
            era it is not ("Disconnection SHOULD NOT be interpreted as the
            client cancelling its request"): the work goes on, its events go
            to the event store, and the client may resume.
        """
        if disconnected and stream.disconnect_cancels:
            if stream.finished:
                return False
            stream.cancel()
            return True
        stream.detach()
        self.state.detached(stream)
        if stream.kind == "listen":
            self.state.listen_done(stream)
        return False

    def ask(self, stream: OutgoingStream, request: ClientRequest) -> tuple[str, bytes]:
        """Send ``request`` to the client on a handshake-era call's stream.

        Returns:
            The JSON-RPC id it goes out with (unique in the session) and the
            event to write (``b""`` if the call was cancelled). The client's
            response comes back as an :class:`~flowkit.mcp.Answer`; call
            :meth:`forget_ask` when the tool stops waiting for it.

        Raises:
            LocalProtocolError: not a handshake-era call's stream (the
                stateless era has no server-to-client requests: the core's
                replay answers those calls), or it has finished.
        """
        if stream.kind != "call" or stream.session_id is None:
            raise LocalProtocolError(
                "only a handshake-era tool call may send requests to its client"
            )
        self.state.ask_serial += 1
        ask_id = f"flowkit-{stream.stream_id}-{self.state.ask_serial}"
        data = stream.request(ask_id, request.method, request.params)
        self.state.asks[stream.session_id, ask_id] = PendingAsk(ask_id, stream)
        return ask_id, data

    def forget_ask(
        self, stream: OutgoingStream, ask_id: str, *, cancel: str | None = None
    ) -> bytes:
        """Stop waiting for the answer to ``ask_id``; a response arriving later is ignored.

        With ``cancel`` (the reason: a timeout), the client is told to stop
        too: the returned event is ``notifications/cancelled`` for the
        request ("Cancellation": either side may cancel a request it sent).
        ``b""`` when nothing is to be written.
        """
        pending = self.state.asks.pop((stream.session_id, ask_id), None)
        if pending is None or cancel is None or stream.finished:
            return b""
        return stream.notify("notifications/cancelled", {"requestId": ask_id, "reason": cancel})

    def _answer(self, session: Session, message: Response) -> Action:
        """A client's response: the answer a waiting tool gets, or nothing (still 202).

        Responses to no pending request -- a repeat, one after the tool gave
        up, one naming another session's request -- are ignored, as JSON-RPC
        ignores responses it cannot correlate.
        """
        if not isinstance(message.id, str):
            return _ACCEPTED
        pending = self.state.asks.pop((session.id, message.id), None)
        if pending is None:
            instance = _asking_instance(message.id)
            journal = self.state.journal
            if journal is not None and instance not in (None, self.state.instance):
                # A tool on another instance asked: the store forwards it there,
                # where a repeat or a late answer is ignored as it is here.
                assert instance is not None
                journal.append(AnswerForwarded(session.id, instance, _encode_response(message)))
            return _ACCEPTED
        return Answer(pending.stream, message.id, message, _ACCEPTED)

    def receive_forwarded(self, control: Control) -> Action | None:
        """What the control bus brought: another instance forwarded it to a call running here.

        A cancel is a :class:`Cancel` (stop the work, send nothing), an answer
        an :class:`Answer`, a session deleted elsewhere a :class:`Reply` whose
        ``cancelled`` are its calls and GET stream here. ``None`` when there
        is nothing to do: the call ended meanwhile, the answer is a repeat,
        or the session's subscriptions changed (a ``resources/subscribe``
        served anywhere: the session here now has the store's set, unless
        it already holds a newer one). Never forwarded again (the bus is one hop).
        """
        if control.data is None:
            cancelled = self.close_session(control.session_id)
            return Reply(200, cancelled=cancelled) if cancelled else None
        session = self.sessions.get_any(control.session_id)
        if session is None:
            return None
        try:
            message = parse_message(control.data)
        except RemoteProtocolError:
            return None
        if isinstance(message, Notification) and message.method == "notifications/cancelled":
            action = _cancellation(message, session.in_flight.get, session.id)
            return action if isinstance(action, Cancel) else None
        if isinstance(message, Notification) and message.method == SUBSCRIPTIONS:
            uris, version = message.params.get("uris"), message.params.get("version")
            if (
                isinstance(uris, list)
                and all(isinstance(uri, str) for uri in uris)
                and type(version) is int
            ):
                session.take_subscriptions(uris, version)
            return None
        if isinstance(message, Response) and isinstance(message.id, str):
            pending = self.state.asks.pop((session.id, message.id), None)
            if pending is not None:
                return Answer(pending.stream, message.id, message, _ACCEPTED)
        return None

    def call_lost(self, session_id: str, stream_id: str, request_id: RequestId, seq: int) -> None:
        """A followed call's instance died (its lease expired): file the lost-call error.

        The adapter following the stream saw that the instance named by
        ``stream_id`` no longer renews its lease and the stream has not ended
        after ``seq``. The error (:data:`~flowkit.mcp._errors.CALL_LOST`) is
        journaled as the stream's final event, so this follower and any later
        resume read it from the store.
        """
        journal = self.state.journal
        if journal is None:
            return
        instance = stream_id.rpartition(".")[0]
        error = call_lost(instance, request_id)
        body = encode_error(request_id, error.code, error.message, error.data)
        event_id = EventId(stream_id, seq + 1).encode()
        journal.append(
            EventAppended(session_id, stream_id, seq + 1, encode_event(body, event_id=event_id))
        )
        journal.append(StreamEnded(session_id, stream_id))

    def list_changed(self, kind: ListKind = "tools") -> tuple[tuple[OutgoingStream, bytes], ...]:
        """``notifications/{kind}/list_changed`` for every stream that wants it.

        Call it after a list changed (``ToolSet.on_change``,
        ``ResourceSet.on_change``, ``PromptSet.on_change``); write each event
        to the connection carrying its stream. The streams are the sessions'
        GET streams (handshake era) and the ``subscriptions/listen`` streams
        whose filter asked for it (``toolsListChanged``...; stateless era);
        nothing at all unless the config advertises ``listChanged`` for it.
        """
        enabled, method, field = _LIST_CHANGES[kind]
        if not getattr(self.config, enabled):
            return ()
        self._broadcast(method)
        return self._list_changed_here(method, field)

    def _list_changed_here(
        self, method: str, field: str
    ) -> tuple[tuple[OutgoingStream, bytes], ...]:
        targets = [s.listen for s in self.sessions if s.listen is not None]
        targets += [s for s in self.state.subscriptions if (s.subscription or {}).get(field)]
        return _notify(targets, method)

    def _broadcast(self, method: str, params: dict[str, Any] | None = None) -> None:
        """A shared endpoint's notification for the other instances' listeners too."""
        if self.state.journal is not None:
            self.state.journal.append(Broadcast(encode_notification(method, params)))

    def receive_broadcast(self, broadcast: Broadcast) -> tuple[tuple[OutgoingStream, bytes], ...]:
        """A notification another instance raised (:class:`Broadcast`), for the streams here.

        Returns the events to write, as :meth:`list_changed` and
        :meth:`resource_updated` do; nothing for what this instance's config
        does not advertise, or for what is not such a notification. Never
        broadcast again.
        """
        try:
            message = parse_message(broadcast.data)
        except RemoteProtocolError:
            return ()
        if not isinstance(message, Notification):
            return ()
        if message.method == RESOURCE_UPDATED:
            uri = message.params.get("uri")
            return self._resource_updated_here(uri) if isinstance(uri, str) else ()
        for enabled, method, field in _LIST_CHANGES.values():
            if message.method == method and getattr(self.config, enabled):
                return self._list_changed_here(method, field)
        return ()

    def resource_updated(self, uri: str) -> tuple[tuple[OutgoingStream, bytes], ...]:
        """``notifications/resources/updated`` for every stream subscribed to ``uri``.

        Call it after ``ResourceSet.updated(uri)``. The streams are the GET
        streams of sessions that sent ``resources/subscribe`` for it
        (handshake era) and the ``subscriptions/listen`` streams listing it in
        ``resourceSubscriptions`` (stateless era, where the notification also
        carries the subscription id).
        """
        self._broadcast(RESOURCE_UPDATED, {"uri": uri})
        return self._resource_updated_here(uri)

    def _resource_updated_here(self, uri: str) -> tuple[tuple[OutgoingStream, bytes], ...]:
        targets = [
            s.listen
            for s in self.sessions
            if s.listen is not None and uri in s.resource_subscriptions
        ]
        targets += [
            s
            for s in self.state.subscriptions
            if uri in (s.subscription or {}).get("resourceSubscriptions", ())
        ]
        return _notify(targets, RESOURCE_UPDATED, {"uri": uri})

    def close_session(self, session_id: str) -> tuple[OutgoingStream, ...]:
        """End a session from the server side (shutdown, admin action).

        Returns:
            The calls that were in flight, now cancelled: stop their work.
        """
        session = self.sessions.close(session_id)
        if session is None:
            return ()
        return self.state.discard(session)

    def expire(self) -> tuple[OutgoingStream, ...]:
        """Give up on detached calls past their grace period, then reap idle sessions.

        Call it periodically (at :meth:`next_deadline`). A call no response
        has carried for ``config.detached_call_grace`` seconds ends with a
        JSON-RPC error (-32000) filed for a client that resumes later; a
        session idle for ``config.session_idle_timeout`` with no client
        attached (no GET stream, no response carrying a call) is closed, and
        its running calls are cancelled.

        Returns:
            The streams whose work the adapter must now stop.
        """
        now = self.state.clock()
        stopped: list[OutgoingStream] = []
        grace = self.config.detached_call_grace
        if grace is not None:
            detached = self.state.detached_calls
            message = f"Request cancelled: no client attached for {grace:g} s"
            for stream, since in list(detached.items()):
                if since + grace > now:
                    break  # oldest first: the rest detached later
                stream.expire(SERVER_ERROR, message)  # its on_done drops it from the table
                stopped.append(stream)
        for session in self.sessions.expire(now):
            stopped.extend(self.state.discard(session))
        return tuple(stopped)

    def expire_sessions(self) -> list[str]:
        """Reap sessions idle for longer than the timeout; returns their ids.

        Only the sessions: :meth:`expire` also ends detached calls and
        returns the work to stop, which is what a server should call.
        """
        expired = self.sessions.expire(self.state.clock())
        for session in expired:
            self.state.discard(session)
        return [s.id for s in expired]

    def next_deadline(self) -> float | None:
        """Clock time at which :meth:`expire` has work, if any."""
        deadlines = [self.sessions.next_deadline()]
        grace = self.config.detached_call_grace
        if grace is not None and self.state.detached_calls:
            deadlines.append(next(iter(self.state.detached_calls.values())) + grace)
        return min((d for d in deadlines if d is not None), default=None)

    # -- POST -----------------------------------------------------------------

    def _post(
        self,
        head: RequestHead,
        body: bytes,
        principal: str | None,
        session: Session | None,
        client: str | None = None,
    ) -> Action:
        if len(body) > self.config.max_body_size:
            raise too_large(self.config.max_body_size)
        return self._message(head, parse_message(body), principal, session, client)

    def _message(
        self,
        head: RequestHead,
        message: Message,
        principal: str | None,
        session: Session | None,
        client: str | None = None,
    ) -> Action:
        if is_modern(head, message, self.config.versions):
            return self._stateless(head, message, principal)
        if isinstance(message, Request) and message.method in OPENS_SESSION:
            policy = self._policy_of(session)
            ctx = RequestContext(message, policy, session, None, head, principal, client)
            return self._dispatch(HANDSHAKE_METHODS, ctx)
        if session is None:
            request_id = message.id if isinstance(message, Request) else None
            raise session_required(request_id)
        self.sessions.touch(session, self.state.clock())
        if isinstance(message, Response):
            return self._answer(session, message)
        if isinstance(message, Notification):
            return self._notification(session, message)
        session.handle(SessionEvent.REQUEST)
        ctx = RequestContext(message, session.policy, session, None, head, principal)
        return self._dispatch(HANDSHAKE_METHODS, ctx)

    def _policy_of(self, session: Session | None) -> VersionPolicy:
        """The revision in force before a session negotiated one (initialize)."""
        if session is not None:
            return session.policy
        return VERSIONS[LATEST_HANDSHAKE_VERSION]

    def _stateless(
        self, head: RequestHead, message: Message, principal: str | None = None
    ) -> Action:
        """Serve a stateless-era (2026-07-28) message: no session is involved."""
        if isinstance(message, Response):
            raise invalid_request(
                "Clients must not send JSON-RPC responses in this protocol revision", message.id
            )
        if isinstance(message, Notification):
            return _ACCEPTED  # cancellation is a disconnect; nothing else is defined
        meta = validate_modern(head, message, self.config.versions)
        ctx = RequestContext(message, meta.policy, None, meta, head, principal)
        return self._dispatch(STATELESS_METHODS, ctx)

    def _dispatch(self, handlers: Mapping[str, Handler], ctx: RequestContext) -> Action:
        request = ctx.request
        handler = handlers.get(request.method)
        try:
            if handler is None:
                raise method_not_found(request.method, ctx.policy.unknown_method_status)
            return handler(self.state, ctx)
        except RemoteProtocolError as exc:
            if exc.request_id is None:
                raise exc.with_request_id(request.id) from exc
            raise

    def _notification(self, session: Session, message: Notification) -> Action:
        if message.method == "notifications/initialized":
            session.handle(SessionEvent.INITIALIZED)
            self.sessions.saved(session)
        elif message.method == "notifications/cancelled":
            action = _cancellation(message, session.in_flight.get, session.id)
            if isinstance(action, Cancel):
                return action
            request_id = message.params.get("requestId")
            journal = self.state.journal
            if (
                journal is not None
                and isinstance(request_id, str | int)
                and not isinstance(request_id, bool)
                and request_id in session.running_elsewhere
            ):
                # It runs on another instance: the store forwards it there.
                data = encode_notification(message.method, message.params)
                journal.append(CancelForwarded(session.id, request_id, data))
        return _ACCEPTED

    # -- GET / DELETE ----------------------------------------------------------------

    def _get(self, head: RequestHead, session: Session) -> Action:
        policy = session.policy
        if not policy.get_stream:
            raise method_not_allowed("GET", ("POST",))
        self.sessions.touch(session, self.state.clock())
        last_event_id = head.get("last-event-id")
        if last_event_id is not None and policy.resumable:
            return self._resume(session, last_event_id)
        if session.listen is not None:
            raise listen_conflict()
        stream = OutgoingStream(
            kind="listen",
            stream_id=session.new_stream_id(self.state.instance),
            session_id=session.id,
            store=self.event_store if policy.resumable else None,
            retry_ms=self.config.sse_retry_ms,
        )
        session.listen = stream
        self.state.attached(session, stream)
        return OpenListenStream(session.id, stream)

    def _resume(self, session: Session, last_event_id: str) -> Action:
        event_id = parse_event_id(last_event_id)
        if event_id is None:
            raise unknown_event_id()
        live = session.stream(event_id.stream_id)
        if self.state.journal is not None:
            return self._follow(session, event_id, live)
        replay = self.event_store.replay_after(session.id, event_id)
        if replay is None:
            if live is None:
                raise unknown_event_id()
            replay = []
        if live is not None:
            live.attach()  # 409 while a response still carries it
            self.state.attached(session, live)
        return Resume(session.id, event_id.stream_id, 200, SSE_HEADERS, tuple(replay), live)

    def _follow(self, session: Session, event_id: EventId, live: OutgoingStream | None) -> Resume:
        """A shared endpoint's resume: the store's replay, then follow the store to the end.

        The store is the only truth, on every instance: events the call made
        while no response carried it may still be on their way there, so
        following the local call could skip them. A response that carries
        the stream, here or elsewhere, makes this a conflict (409).
        """
        stream_id = event_id.stream_id
        if (
            (live is not None and not live.detached)
            or stream_id in session.attached_elsewhere
            or stream_id in session.following
        ):
            raise stream_conflict()
        loaded = self.state.loaded
        if loaded.replay is None:
            raise unknown_event_id()
        follow = None if loaded.replay_ended else loaded.replay_last
        if follow is not None:
            self.state.followed(session, stream_id)
        return Resume(
            session.id, stream_id, 200, SSE_HEADERS, tuple(loaded.replay), None, follow=follow
        )

    def _delete(self, session: Session) -> Reply:
        self.sessions.close(session.id)
        cancelled = self.state.discard(session)
        return Reply(200, ends_session=session.id, cancelled=cancelled)
