"""The MCP endpoint as a bare ASGI application (the hot path, below Quart).

:class:`MCPApp` moves bytes between hypercorn and the sans-IO
:class:`flowkit.mcp.Endpoint`, reports disconnects to it, and owns the
nurseries; every protocol decision is the core's. Per request:

1. ``check_request_head`` refuses early, before any body is read;
2. the body is read up to the size limit (a larger one gets the core's 413);
3. ``receive_request`` returns an action, dispatched by type.

Tool calls run in the app's long-lived nursery, opened for the ASGI lifespan,
never in the request's task: in the 2025 era a disconnect is not a cancel, so
the call must outlive the request that started it. Whether a disconnect
cancels is the core's answer from ``stream_finished`` (era policy as data),
so this module has no per-era branches.

Writing an SSE response is a plain task loop, not an async generator: it
drains everything ready from the call's outbox (one write for many events
when the socket is slow) and injects a keepalive comment when the stream has
been idle for the interval. A second task watches for ``http.disconnect``.
A tool's :class:`~flowkit_http.CloseStream` ends the response early, between
two writes, exactly as a client disconnect would in that era (the outbox
detaches; the client resumes from the event store); whether a stream may be
closed early, and whether an idle one gets a keepalive, are again the core's
answers (``OutgoingStream.end_response`` and ``keepalive``). A runner that
dies is reported too (``OutgoingStream.abort``): the client gets the core's
JSON-RPC error and the session is not left busy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    MutableMapping,
    Sequence,
)
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, NamedTuple, Protocol

import trio

from flowkit import Pipeline
from flowkit.mcp import (
    Action,
    Answer,
    Cancel,
    Endpoint,
    Invoke,
    ListKind,
    OpenListenStream,
    OutgoingStream,
    Reply,
    RequestId,
    Resume,
    StartCall,
)

from ._asker import LiveAsker, check_request_state_keys
from ._invoke import run_invoke
from ._live import LiveResource
from ._logformat import correlate
from ._logging import log_refusal
from ._outbox import Outbox, OutboxStatistics, open_outbox
from ._runner import run_call
from ._server import MCPServer, StreamSettings
from ._shared import (
    DEFAULT_MAX_PENDING_BYTES,
    SharedState,
    SharedStoreOpener,
    StoreFailed,
    definition_digest,
)
from ._telemetry import Telemetry
from ._tracing import call_span

__all__ = ["CONNECTION_KEY", "MORE", "ASGIApp", "CallKey", "Connection", "MCPApp"]

logger = logging.getLogger("flowkit_http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_KEEPALIVE_GROUP = 8  # writers woken per scheduler pass by the keepalive task
_LISTEN_QUEUE = 16  # notifications waiting for one listen stream's socket

_NOT_STARTED = Reply(
    503,
    ((b"content-type", b"text/plain"), (b"retry-after", b"1")),
    b"MCP endpoint not started: serve the app with ASGI lifespan enabled",
)


CONNECTION_KEY = "flowkit_http.connection"
"""The key of a request's :class:`Connection` in its ASGI ``state`` (``flowkit serve``)."""


MORE = "flowkit_http.more"
"""A key an ASGI message may carry: the app sends its next message at once.

``flowkit serve`` then writes the message's bytes with the next message's
(a response head with its first event, a last event with the end of the
response): one socket write instead of two. Other servers ignore the key.
The app must not wait on anything between the two sends.
"""


class Connection(Protocol):
    """The HTTP/1 connection a request came on, as ``flowkit serve`` shows it.

    ``closed`` tells whether it ended for the server, and ``on_close`` (one
    at a time: HTTP/1 serves one request at a time) is called once when it
    does. An open response then knows its client left with no task of its
    own waiting for ``http.disconnect``. Under another server there is none,
    and a task per response watches ``receive`` instead.
    """

    closed: bool
    on_close: Callable[[], None] | None


def _connection(scope: Scope) -> Connection | None:
    """The request's :class:`Connection`, if its server tells one (HTTP/1 only).

    Over HTTP/2 one connection carries many requests, and a client may
    abandon one of them (``RST_STREAM``) while the connection lives on.
    """
    if scope.get("http_version") not in ("1.0", "1.1"):
        return None
    state = scope.get("state")
    connection = state.get(CONNECTION_KEY) if state is not None else None
    return connection if connection is not None and connection.on_close is None else None


class _Writer:
    """One SSE response being written, as the shared keepalive task sees it.

    ``last`` is when it last wrote (trio's clock), ``waiting`` whether it is
    waiting for events now, and ``wake`` makes that wait return at once.
    ``sent`` counts the bytes written (one addition per write, not per
    event) and ``tool`` names the tool whose call it carries, if any.
    ``ended`` asks the response to end (shutdown, a cancel, the client
    leaving), and ``disconnected`` says whether the client left.

    Ending is a flag and a wake, not a cancel scope per response (a scope
    and its cancel status are ~0.9 KiB per open stream): the writer's wait
    returns, and the writer sees the flag before it takes anything, so
    nothing is taken and lost. A write under way finishes first: a client
    that left fails it at once, and a stalled one is reset by the server's
    shutdown deadline (flowkit_http._serve).
    """

    __slots__ = ("disconnected", "ended", "last", "sent", "tool", "waiting", "wake")

    def __init__(self, wake: Callable[[], None], tool: str | None) -> None:
        self.last = trio.current_time()
        self.waiting = False
        self.wake = wake
        self.sent = 0
        self.tool = tool
        self.ended = False
        self.disconnected = False

    def end(self) -> None:
        """End the response: at once if it waits for events, else after the write under way."""
        self.ended = True
        self.wake()

    def left(self) -> None:
        """The client went away: end the response."""
        self.disconnected = True
        self.end()


class CallKey(NamedTuple):
    """Which running call an :meth:`MCPApp.statistics` entry describes.

    ``serial`` tells apart calls that share the rest: stateless-era clients
    have no session, and two of them may use the same request id at once.
    """

    session_id: str | None
    request_id: RequestId | None
    serial: int


class _Call:
    """A running tool call: its outbox and the scope that cancels it.

    ``response_ended`` is set when the response carrying the call has ended,
    made only while a :class:`~flowkit_http.CloseStream` waits for that.
    """

    __slots__ = (
        "asker",
        "key",
        "outbox",
        "pipeline",
        "response_ended",
        "scope",
        "started",
        "stream",
        "tool",
        "writers",
    )

    def __init__(self, stream: OutgoingStream, outbox: Outbox, serial: int, tool: str) -> None:
        self.key = CallKey(stream.session_id, stream.request_id, serial)
        self.stream = stream
        self.outbox = outbox
        self.tool = tool
        self.started = trio.current_time()
        self.pipeline: Pipeline[Any] | None = None  # a ToolPipeline tool's, once open
        # Responses writing it (telemetry: its outbox numbers are final at 0).
        # The response to its request carries it from the start.
        self.writers = 1
        self.scope = trio.CancelScope()
        self.response_ended: trio.Event | None = None  # made when a close waits
        self.asker: LiveAsker | None = None  # a handshake-era call that may ask its client

    def opened(self, pipeline: Pipeline[Any]) -> None:
        """The runner opened the tool's pipeline (a bound method: lighter than a partial)."""
        self.pipeline = pipeline

    async def close_response(self) -> None:
        """End the HTTP response carrying the call once it has written what waits.

        The runner waits here (adding nothing), so every event the tool
        emitted before :class:`~flowkit_http.CloseStream` goes out on this
        response; the writer then ends it between two writes. Whether the
        response may end early is the core's answer
        (``OutgoingStream.end_response``); where it may not, this is a no-op.
        """
        if not self.stream.end_response():
            return
        if self.response_ended is None:
            self.response_ended = trio.Event()
        ended = self.response_ended
        if not self.outbox.statistics().queued:
            self.outbox.wake()  # the writer's wait returns; nothing is lost
        await ended.wait()


class MCPApp:
    """ASGI app serving one MCP endpoint path, optionally in front of another app.

    Args:
        target: an :class:`MCPServer` (tools + config) or a ready
            :class:`~flowkit.mcp.Endpoint`.
        path: the endpoint path (``/mcp``); other paths go to ``fallback``.
        fallback: the app behind this one (a Quart app's ``asgi_app``); it
            also receives the lifespan events. ``None``: other paths get 404.
        settings: stream settings; defaults to the server's.
    """

    def __init__(
        self,
        target: MCPServer | Endpoint,
        *,
        path: str = "/mcp",
        fallback: ASGIApp | None = None,
        settings: StreamSettings | None = None,
    ) -> None:
        self._opener: SharedStoreOpener | None = None
        self._live: tuple[LiveResource, ...] = ()
        if isinstance(target, MCPServer):
            self.endpoint = target.endpoint()
            self.settings = settings if settings is not None else target.settings
            self._opener = target.shared
            self._live = tuple(target.live_resources)
        else:
            self.endpoint = target
            self.settings = settings if settings is not None else StreamSettings()
        self._shared: SharedState | None = None  # while running, with a shared store
        self.path = path.rstrip("/") or "/"
        self.fallback = fallback
        self._nursery: trio.Nursery | None = None
        self._calls: dict[OutgoingStream, _Call] = {}
        self._serial = 0  # numbers the calls (see CallKey)
        # The responses being written (shutdown and a cancel end them; the
        # shared keepalive task and telemetry walk them).
        self._responses: dict[_Writer, OutgoingStream] = {}
        self._following: set[trio.CancelScope] = set()  # shared resumes (Resume.follow)
        # Open listen streams (GET, subscriptions/listen) and their queues.
        self._listeners: dict[OutgoingStream, trio.MemorySendChannel[bytes]] = {}
        #: Outcomes and totals for ``/metrics`` and ``/dashboard``.
        self.telemetry = Telemetry()

    # -- ASGI -------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # ``async def``, as servers tell an ASGI app from a WSGI one by it.
        await self.dispatch(scope, receive, send)

    def dispatch(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        """``__call__`` without a coroutine frame of its own (``flowkit serve`` calls this).

        A request to the endpoint runs as ``_http`` itself, so an open
        stream holds no frame of the dispatch (~0.5 KiB per idle stream,
        docs/benchmarks.md).
        """
        if scope["type"] == "http" and (scope["path"].rstrip("/") or "/") == self.path:
            return self._http(scope, receive, send)
        return self._other(scope, receive, send)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            async with self.running():
                if self.fallback is not None:
                    await self.fallback(scope, receive, send)
                else:
                    await _bare_lifespan(receive, send)
        elif self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif kind == "http":
            await _send_reply(send, Reply(404, ((b"content-type", b"text/plain"),), b"Not Found"))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Own the long-lived nursery for as long as the server serves.

        The ASGI lifespan enters this; tests and embedders may too. On exit
        every open stream is ended and every call cancelled.
        """
        check_request_state_keys(self.endpoint, shared=self._opener is not None)
        async with contextlib.AsyncExitStack() as stack:
            if self._opener is not None:
                opened = self._opener.open(
                    self.endpoint.config,
                    instance=self.endpoint.state.instance or "",
                    digest=definition_digest(self.endpoint),
                )
                store = await stack.enter_async_context(opened)
                bound = getattr(self._opener, "max_pending_bytes", DEFAULT_MAX_PENDING_BYTES)
                self._shared = SharedState(store, max_pending_bytes=bound, stop=self._cancel)
            # Listen to the (possibly shared) sets only while serving: an app
            # stopped and dropped leaves no listener behind (issue 12).
            for remove in (
                self.endpoint.tools.on_change(partial(self._list_changed, "tools")),
                self.endpoint.resources.on_change(partial(self._list_changed, "resources")),
                self.endpoint.prompts.on_change(partial(self._list_changed, "prompts")),
                self.endpoint.resources.on_update(self._resource_updated),
            ):
                stack.callback(remove)
            nursery = await stack.enter_async_context(trio.open_nursery())
            self._nursery = nursery
            nursery.start_soon(self._reap_sessions)
            nursery.start_soon(self._keepalive)
            for live in self._live:
                nursery.start_soon(live.run, self.endpoint.resources.updated)
            if self._shared is not None:
                nursery.start_soon(self._shared.flush, self.endpoint)
                shared = self._shared
                nursery.start_soon(shared.control, self.endpoint, self._deliver, self._queue)
            try:
                yield
            finally:
                self.close_streams()
                self._nursery = None
                self._shared = None
                nursery.cancel_scope.cancel()

    @property
    def shared_store(self) -> object | None:
        """The shared store this app drives while serving (``/readyz`` probes it)."""
        return self._shared.store if self._shared is not None else None

    @property
    def serving(self) -> bool:
        """The lifespan has started: tool calls can run (``/readyz``)."""
        return self._nursery is not None

    def close_streams(self) -> None:
        """Graceful shutdown: end every open SSE response and cancel every call.

        Responses end cleanly (a final empty chunk), so clients see the end at
        once instead of waiting for the server's graceful timeout.
        """
        for writer in list(self._responses):
            writer.end()
        for scope in list(self._following):
            scope.cancel()
        for call in list(self._calls.values()):
            call.scope.cancel()

    def statistics(self) -> dict[CallKey, OutboxStatistics]:
        """Outbox statistics of the calls running now, by (session, request id, serial)."""
        return {call.key: call.outbox.statistics() for call in self._calls.values()}

    def _list_changed(self, kind: ListKind) -> None:
        """A list changed: queue the core's notifications on listen streams."""
        self._queue(self.endpoint.list_changed(kind))

    def _resource_updated(self, uri: str) -> None:
        """A resource changed: tell the streams subscribed to it."""
        self._queue(self.endpoint.resource_updated(uri))

    def _queue(self, events: tuple[tuple[OutgoingStream, bytes], ...]) -> None:
        for stream, data in events:
            channel = self._listeners.get(stream)
            if channel is not None:
                # Full: the client is not reading; what waits already tells it to re-fetch.
                with contextlib.suppress(trio.WouldBlock):
                    channel.send_nowait(data)

    async def _reap_sessions(self) -> None:
        # Polled rather than timed to next_deadline(): a user-supplied Endpoint
        # may run on a clock other than trio's.
        while True:
            await trio.sleep(self.settings.expiry_poll_interval)
            self._cancel(self.endpoint.expire())
            if self._shared is not None:
                await self._shared.heartbeat(self.endpoint)

    async def _keepalive(self) -> None:
        """One task for every stream's keepalive: O(1) per event, not a timer per wait.

        Every quarter interval it wakes the writers that are waiting and have
        not written for three quarters of it; each then writes an SSE
        comment. So an idle stream is never silent longer than the interval
        (a comment comes after 3/4 to 1 interval of silence, which is what a
        proxy's read timeout needs), and a busy one never gets one.
        """
        interval = self.settings.keepalive_interval
        tick = interval / 4
        while True:
            await trio.sleep(tick)
            due = trio.current_time() - (interval - tick)
            woken = 0
            for writer in list(self._responses):
                if writer.waiting and writer.last <= due:
                    writer.wake()
                    woken += 1
                    if woken % _KEEPALIVE_GROUP == 0:
                        # Let this group write before waking the next: thousands
                        # of writers mid-write at once would each hold a send
                        # stack, and the heap keeps that peak (RSS per stream).
                        await trio.lowlevel.checkpoint()

    # -- one request ---------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        endpoint = self.endpoint
        refusal = endpoint.check_request_head(method, headers)
        if refusal is not None:
            self.telemetry.refused(refusal.status)
            await _send_reply(send, refusal)
            return
        body = b""
        if method == "POST":
            read = await _read_body(receive, endpoint.config.max_body_size)
            if read is None:
                return  # the client left before sending its request
            body = read
        if self._nursery is None:
            await _send_reply(send, _NOT_STARTED)
            return
        peer = scope.get("client")
        client = peer[0] if peer is not None else None
        shared = self._shared
        if shared is None:
            action = endpoint.receive_request(method, headers, body, peer=client)
        else:
            try:
                loaded = await shared.load(endpoint, method, headers)
                action = endpoint.receive_request(method, headers, body, loaded=loaded, peer=client)
                await shared.sync(endpoint)  # stored before the reply or first event goes out
            except StoreFailed as failed:
                await _send_reply(send, failed.reply)
                return
        # Synchronous until the first await below: a Resume attaches to its
        # call before the call can emit another event.
        if isinstance(action, Reply):
            if action.status >= 400:
                self.telemetry.refused(action.status)
            self._cancel(action.cancelled)
            if action.error is not None and (action.status >= 500 or action.status == 429):
                log_refusal(action.error)
            await _send_reply(send, action)
        elif isinstance(action, StartCall):
            call = self._start(action)
            status, response_headers, first = action.stream.open()
            await self._stream(
                call.stream, call, status, response_headers, first, receive, send, scope
            )
        elif isinstance(action, Invoke):
            await _send_reply(send, await run_invoke(action))
        elif isinstance(action, Cancel | Answer):
            self._deliver(action)
            await _send_reply(send, action.reply)
        elif isinstance(action, Resume) and action.follow is not None:
            assert shared is not None  # only a shared endpoint follows its store
            self.telemetry.resumes += 1
            await self._follow(action, shared, receive, send)
        elif isinstance(action, Resume):
            self.telemetry.resumes += 1
            live = self._calls.get(action.live) if action.live is not None else None
            if live is not None:
                live.outbox.attach()
                live.writers += 1
            if action.live is None:  # the call ended: the replay is the whole response
                start = {"type": "http.response.start", "status": action.status}
                await send({**start, "headers": list(action.headers)})
                for chunk in _chunks(action.replay):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                release = getattr(self.endpoint.event_store, "release", None)
                if release is not None:  # delivered: the store's bounds apply again
                    release(action.session_id, action.stream_id)
            else:
                await self._stream(
                    action.live,
                    live,
                    action.status,
                    action.headers,
                    action.replay,
                    receive,
                    send,
                    scope,
                )
        elif isinstance(action, OpenListenStream):
            if shared is not None and action.session_id is not None:
                # Subscriptions served elsewhere meanwhile; beside the stream, which
                # must open before any await (its notifications queue from now on).
                self._nursery.start_soon(shared.listening, endpoint, action.session_id)
            status, response_headers, first = action.stream.open()
            queue, listen = trio.open_memory_channel[bytes](_LISTEN_QUEUE)
            self._listeners[action.stream] = queue
            try:
                await self._stream(
                    action.stream,
                    None,
                    status,
                    response_headers,
                    first,
                    receive,
                    send,
                    scope,
                    listen,
                    queue,
                )
            finally:
                del self._listeners[action.stream]

    async def _follow(
        self, action: Resume, shared: SharedState, receive: Receive, send: Send
    ) -> None:
        """A shared resume: the replay, then the store's events of the stream, to its end."""
        await send(
            {
                "type": "http.response.start",
                "status": action.status,
                "headers": list(action.headers),
            }
        )
        for chunk in _chunks(action.replay):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        disconnected = False

        async def write(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async with trio.open_nursery() as nursery:
            self._following.add(nursery.cancel_scope)  # shutdown ends it

            async def watch() -> None:
                nonlocal disconnected
                while (await receive())["type"] != "http.disconnect":
                    pass
                disconnected = True
                nursery.cancel_scope.cancel()

            try:
                nursery.start_soon(watch)
                await shared.follow(self.endpoint, action, write, self.settings.keepalive_interval)
                nursery.cancel_scope.cancel()
            finally:
                self._following.discard(nursery.cancel_scope)
        if not disconnected:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _start(self, action: StartCall) -> _Call:
        assert self._nursery is not None
        settings = self.settings
        # A detached lossless call pauses before the store would evict what
        # its client has not read (the events queued at the detach included),
        # and holds its stream against the store's session and server bounds.
        store = self.endpoint.event_store
        kept = getattr(store, "max_events_per_stream", None)
        kept_bytes = getattr(store, "max_bytes_per_stream", None)
        holder = getattr(store, "holder", None)
        stream = action.stream
        hold = (
            holder(stream.session_id, stream.stream_id)
            if holder is not None and stream.session_id is not None
            else None
        )
        # With a shared store a round trip to it precedes every write: the
        # queue holds what the tool makes meanwhile, so it keeps producing.
        scale = _SHARED_QUEUE_SCALE if self._shared is not None else 1
        outbox = open_outbox(
            action.tool.policy,
            max_events=settings.max_queued_events * scale,
            max_logs=settings.max_queued_logs,
            max_unread=None if kept is None else max(1, kept - settings.max_queued_events - 2),
            # Half: the events queued at the detach are of unknown size.
            max_unread_bytes=None if kept_bytes is None else kept_bytes // 2,
            hold=hold,
        )
        self._serial += 1
        call = _Call(action.stream, outbox, self._serial, action.tool.name)
        self._calls[action.stream] = call
        # Named after the tool: the watchdog (_watchdog.py) reports blocking by it.
        self._nursery.start_soon(self._run, action, call, name=f"tool {action.tool.name}")
        return call

    async def _run(self, action: StartCall, call: _Call) -> None:
        stream, outbox = action.stream, call.outbox
        correlate(action.session_id, action.request_id)  # this call's log lines
        delivered = False
        outcome, kind = "cancelled", None
        context = None
        if action.tool.context_param is not None:
            if action.replay is None:  # the handshake era: ask on the stream
                timeout = self.endpoint.config.ask_timeout
                call.asker = LiveAsker(self.endpoint, stream, outbox, timeout)
            context = action.context(call.asker, call.asker.notify if call.asker else None)
        with call_span(action) as span:
            try:
                with call.scope:
                    kind = await run_call(
                        stream,
                        action.tool.fn,
                        action.arguments,
                        outbox,
                        call.close_response,
                        call.opened,
                        context,
                    )
                    delivered = True
                    outcome = "ok" if kind is None else "error"
            except Exception as exc:
                outcome, kind = "crashed", type(exc).__name__
                logger.exception("tool %r crashed the runner", action.tool.name)
                # The runner died without a final message: the core answers the
                # request with its error, so the client is not left waiting.
                final = stream.abort()
                if final:
                    try:
                        await outbox.finish(final)
                        delivered = True
                    except Exception:
                        logger.exception("could not deliver the error of tool %r", action.tool.name)
            finally:
                if not stream.finished:
                    stream.abort()  # shutdown: the stream ends, so its session is not busy
                if not delivered:
                    outbox.abort()
                del self._calls[stream]
                self.telemetry.call_ended(call, outcome, kind)
                span.ended(outcome, kind)

    def _deliver(self, action: Action) -> None:
        """Carry out what reaches a running call: a cancel, an answer, its session's end.

        From a request here, or forwarded by another instance over the
        control bus (``SharedState.control``).
        """
        if isinstance(action, Cancel):
            self._cancel((action.stream,))
        elif isinstance(action, Answer):
            answered = self._calls.get(action.stream)
            if answered is not None and answered.asker is not None:
                answered.asker.deliver(action)
        elif isinstance(action, Reply):
            self._cancel(action.cancelled)

    def _cancel(self, streams: tuple[OutgoingStream, ...]) -> None:
        """Stop the work behind ``streams`` and end the responses carrying them."""
        for stream in streams:
            call = self._calls.get(stream)
            if call is not None:
                call.scope.cancel()
                call.outbox.abort()
            elif stream.kind == "listen":
                for writer, carried in list(self._responses.items()):
                    if carried is stream:
                        writer.end()

    # -- writing a stream ----------------------------------------------------------------

    async def _stream(
        self,
        stream: OutgoingStream,
        call: _Call | None,
        status: int,
        headers: tuple[tuple[bytes, bytes], ...],
        first: bytes | Sequence[bytes],
        receive: Receive,
        send: Send,
        scope: Scope,
        listen: trio.MemoryReceiveChannel[bytes] | None = None,
        listen_queue: trio.MemorySendChannel[bytes] | None = None,
    ) -> None:
        """Write one SSE response until it ends, the client leaves, or shutdown."""
        if self._shared is not None:
            try:
                await self._shared.sync(self.endpoint)  # the first event is stored first
            except StoreFailed as failed:
                self._cancel((stream,))
                self.endpoint.stream_finished(stream, disconnected=True)
                await _send_reply(send, failed.reply)
                return
        start: Message = {"type": "http.response.start", "status": status, "headers": list(headers)}
        if first if isinstance(first, bytes) else any(first):
            start[MORE] = True  # the head goes out with the first event, sent next
        await send(start)
        sent = 0
        # A replay goes out in bounded chunks, each awaited: never one copy of it all.
        for chunk in _chunks((first,) if isinstance(first, bytes) else first):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
        wake: Callable[[], None]
        if call is not None:
            wake = call.outbox.wake
        else:
            if listen is None or listen_queue is None:
                # Nothing will come (a resumed call that has ended): keepalives only.
                listen_queue, listen = trio.open_memory_channel[bytes](1)
            wake = partial(_poke_queue, listen_queue)
        writer = _Writer(wake, call.tool if call is not None else None)
        writer.sent = sent
        self._responses[writer] = stream  # shutdown and a cancel end it
        connection = _connection(scope)
        try:
            # Where the connection tells when the client leaves, no watcher
            # task (and no nursery); elsewhere _watch reads the disconnect.
            # The write loop is inline, not a method: an idle stream's
            # request task holds one coroutine frame fewer.
            watching = trio.open_nursery() if connection is None else contextlib.nullcontext()
            async with watching as nursery:
                if nursery is not None:
                    nursery.start_soon(_watch, receive, writer)
                else:
                    assert connection is not None
                    connection.on_close = writer.left
                    if connection.closed:
                        writer.left()
                # Keepalive has flowkit.keepalive's semantics (inject only when idle
                # *and* the writer is waiting; the idle time restarts after every
                # write; heartbeats never queue), but no timer per wait: the shared
                # _keepalive task wakes this wait (outbox.wake, or an empty item on a
                # listen queue) when the stream has been idle for the interval.
                while not writer.ended:
                    if stream.closing and call is not None and not call.outbox.statistics().queued:
                        break  # the tool closed the response (CloseStream); the call goes on
                    writer.waiting = True
                    try:
                        if call is None:
                            # A listen stream: the notifications queued for it, else keepalives.
                            assert listen is not None
                            data = await listen.receive()
                            if writer.ended:
                                break  # its queue goes with the stream, as it always did
                        else:
                            outbox = call.outbox
                            # The outbox's wait, unrolled: no frame of its own while idle.
                            while (parked := outbox.park()) is not None:
                                await parked
                            if writer.ended:
                                break  # before taking: nothing taken is lost
                            try:
                                events = outbox.take()
                            except trio.EndOfChannel:
                                break
                            # One event (a paced tool): no copy.
                            data = events[0] if len(events) == 1 else b"".join(events)
                    finally:
                        writer.waiting = False
                    if not data:
                        data = stream.keepalive()  # b"" where the core says none is due
                        self.telemetry.keepalives += bool(data)
                    elif self._shared is not None:
                        try:
                            await self._shared.sync(self.endpoint)  # append before send
                        except StoreFailed:
                            break  # ends the response: no event the store lacks reaches a client
                    if data:
                        body: Message = {
                            "type": "http.response.body",
                            "body": data,
                            "more_body": True,
                        }
                        last = call is not None and self._shared is None and call.outbox.ended()
                        if last:
                            body[MORE] = True  # the end of the response follows at once
                        await send(body)
                        writer.last = trio.current_time()
                        writer.sent += len(data)
                        if last:
                            break
                if nursery is not None:
                    nursery.cancel_scope.cancel()
        finally:
            if connection is not None and connection.on_close == writer.left:
                connection.on_close = None
            del self._responses[writer]
            if call is not None and call.response_ended is not None:
                call.response_ended.set()
                call.response_ended = None
            disconnected = writer.disconnected
            if self.endpoint.stream_finished(stream, disconnected=disconnected):
                self._cancel((stream,))  # an era where a disconnect is a cancel
            elif call is not None:
                call.outbox.detach()  # events go on to the event store only
            if call is not None:
                call.writers -= 1
                self.telemetry.response_ended(call, writer.sent)
            if self._shared is not None:
                with contextlib.suppress(StoreFailed):  # logged; the TTLs clean up
                    await self._shared.sync(self.endpoint)
        if not writer.disconnected:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _watch(receive: Receive, writer: _Writer) -> None:
    """Wait for the client to leave (where no :class:`Connection` tells it)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    writer.left()


def _poke_queue(queue: trio.MemorySendChannel[bytes]) -> None:
    """Wake a listen stream's writer: an empty item means "write a keepalive"."""
    with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
        queue.send_nowait(b"")


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, cut at ``limit + 1`` bytes (the core then answers 413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[: limit + 1]
        if not message.get("more_body", False):
            return b"".join(chunks)


_CHUNK = 64 * 1024  # bytes of replayed events per write
_SHARED_QUEUE_SCALE = 4  # a call's event queue with a shared store (docs/scaling.md)


def _chunks(events: Sequence[bytes]) -> Iterator[bytes]:
    """``events`` as writes of about ``_CHUNK`` bytes (a larger event alone), none empty."""
    group: list[bytes] = []
    size = 0
    for event in events:
        if group and size + len(event) > _CHUNK:
            yield b"".join(group)
            group, size = [], 0
        group.append(event)
        size += len(event)
    if size:
        yield b"".join(group)


async def _send_reply(send: Send, reply: Reply) -> None:
    headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode("ascii"))]
    await send(
        {"type": "http.response.start", "status": reply.status, "headers": headers, MORE: True}
    )
    await send({"type": "http.response.body", "body": reply.body, "more_body": False})


async def _bare_lifespan(receive: Receive, send: Send) -> None:
    """The ASGI lifespan protocol when no app stands behind us."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
