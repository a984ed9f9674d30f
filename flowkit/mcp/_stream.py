"""The server side of one SSE response stream, sans-IO.

An :class:`OutgoingStream` turns what a running tool reports (progress, logs,
its result) into the exact bytes to write, and enforces the rules a correct
MCP server keeps on that stream:

* progress only when the request asked for it, strictly increasing
  ("Progress": ``progress`` MUST increase with each notification);
* logs only at or above the client's level ("Logging");
* exactly one final message (result or error), and nothing after it
  ("Progress Flow": notifications MUST stop after completion);
* once the client cancelled, *nothing* more, in particular no response
  ("Cancellation": receivers SHOULD NOT send a response for a cancelled
  request);
* every event with an id is filed in the event store so a reconnecting client
  can have it replayed ("Resumability and Redelivery").

Theory of operation: the stream's whole life is one table per kind of stream,
``(state, input) -> outcome`` (:data:`STREAM_TRANSITIONS`), and every method
steps it, the progress hot path included. The adapter reports everything that
happens to the stream as an input, and the table's answer is the only truth:

* an HTTP response starts carrying it (``OPEN``, then ``ATTACH`` when a client
  resumes) or stops (``DETACH``);
* the tool asks to end the response early (``CLOSE``, SEP-1699): only a
  resumable stream may, and the answer says whether this one does;
* the work emits (``SEND``), asks for a keepalive (``KEEPALIVE``), ends
  (``FINAL``: its result, or its failure as an ``isError`` result), or the
  runner dies without a word (``ABORT``: the core's JSON-RPC error goes out,
  so the client is answered and the session is not left busy);
* the client cancels (``CANCEL``): nothing more goes out;
* no client came back for a detached call within the grace period
  (``EXPIRE``): its final JSON-RPC error is filed for a client that resumes
  later, then nothing more goes out, as after a cancel.

An outcome is the next state (the input's bytes are produced), ``IGNORED``
(accepted, nothing produced: a cancel after completion, anything after a
cancel), ``REFUSED`` (the peer's fault: resuming a stream a connection still
carries, :class:`~flowkit.mcp.RemoteProtocolError` 409), or absent (our bug:
:class:`~flowkit.mcp.LocalProtocolError`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import orjson

from ._content import error_result, with_delivery
from ._errors import INTERNAL_ERROR, LocalProtocolError, stream_conflict
from ._events import EventStore
from ._headers import Binding
from ._jsonrpc import (
    RequestId,
    error_message,
    notification_message,
    request_message,
    result_message,
)
from ._levels import LOG_LEVELS, LogThreshold
from ._sse import EventId, encode_comment, encode_event, event_template

_LINE = b"%s\n"  # a stdio message: one JSON text per line (orjson never emits a newline)

if TYPE_CHECKING:
    from ._tools import Tool

__all__ = [
    "MAX_PROGRESS_TOKEN",
    "SSE_HEADERS",
    "STREAM_TRANSITIONS",
    "Outcome",
    "OutgoingStream",
    "StreamInput",
    "StreamState",
]

SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream"),
    # no-transform stops proxies from compressing (and so buffering) events.
    (b"cache-control", b"no-cache, no-transform"),
    # nginx and friends buffer responses unless told not to.
    (b"x-accel-buffering", b"no"),
)
"""Response headers of every SSE stream the core opens."""

_MAX_FAST_INT = 2**63 - 1  # orjson's integer range (it refuses larger ones)

MAX_PROGRESS_TOKEN = 256
"""Longest string ``progressToken`` accepted, in characters. The spec sets no
limit, but every progress event repeats the token, so a 1 MB token made each
stored event 1 MB; longer ones are refused with -32602."""


def progress_token_problem(token: object) -> str | None:
    """Why ``token`` cannot be a ``progressToken`` (``None``: it can, or is absent)."""
    if token is None:
        return None
    if isinstance(token, bool) or not isinstance(token, str | int):
        return '"progressToken" must be a string or an integer'
    if isinstance(token, str) and len(token) > MAX_PROGRESS_TOKEN:
        return f'"progressToken" is longer than {MAX_PROGRESS_TOKEN} characters'
    return None


_PROGRESS = "notifications/progress"


class StreamState(enum.Enum):
    """Where a stream is in its life."""

    CREATED = "created"  # handed to the adapter, headers not produced yet
    ATTACHED = "attached"  # an HTTP response carries it
    CLOSING = "closing"  # attached, and that response is to end early (SEP-1699)
    DETACHED = "detached"  # open, but no response carries it (the client may resume)
    DONE = "done"  # the final message was produced
    CANCELLED = "cancelled"  # the client cancelled: nothing more goes out


class StreamInput(enum.IntEnum):
    """What the adapter reports to, or asks of, a stream (an int: rows are tuples)."""

    OPEN = 0  # the response that answers the request starts
    ATTACH = 1  # a resuming response starts carrying it
    SEND = 2  # a notification
    KEEPALIVE = 3  # the writer has been idle: may it write a comment?
    CLOSE = 4  # the tool asks to end the response early
    DETACH = 5  # the response carrying it ended
    FINAL = 6  # the work ended (result, or failure as a result)
    ABORT = 7  # the runner died without a final message
    CANCEL = 8  # the client cancelled
    EXPIRE = 9  # no client came back within the grace period: the server gives up


class Outcome(enum.Enum):
    """A table answer that is not a next state."""

    IGNORED = "ignored"  # accepted, nothing produced, state kept
    REFUSED = "refused"  # the peer's fault: RemoteProtocolError (409)


Answer: TypeAlias = StreamState | Outcome
Table: TypeAlias = Mapping[tuple[StreamState, StreamInput], Answer]
StreamKind = Literal["call", "listen"]

_S, _I, _X = StreamState, StreamInput, Outcome.IGNORED
_OPEN = (_S.ATTACHED, _S.DETACHED)

# A GET or subscriptions/listen stream: attached, detached, cancelled. It never
# carries a response and has no runner, so FINAL, ABORT and CLOSE are our
# misuse, and it never reaches CLOSING or DONE.
_LISTEN: dict[tuple[StreamState, StreamInput], Answer] = {
    (_S.CREATED, _I.OPEN): _S.ATTACHED,
    (_S.CREATED, _I.CANCEL): _S.CANCELLED,
    (_S.ATTACHED, _I.ATTACH): Outcome.REFUSED,  # already connected
    (_S.DETACHED, _I.ATTACH): _S.ATTACHED,
    **{(state, _I.SEND): state for state in _OPEN},
    (_S.ATTACHED, _I.KEEPALIVE): _S.ATTACHED,
    (_S.DETACHED, _I.KEEPALIVE): _X,  # no response to keep alive
    (_S.ATTACHED, _I.DETACH): _S.DETACHED,
    **{(state, _I.CANCEL): _S.CANCELLED for state in _OPEN},
    # After a cancel every input is accepted and produces nothing.
    **{(_S.CANCELLED, event): _X for event in StreamInput},
}
# A tool call's stream adds one final message (or the core's error when the
# runner dies) and the early close of its response.
_CALL: dict[tuple[StreamState, StreamInput], Answer] = {
    **_LISTEN,
    (_S.CREATED, _I.ABORT): _S.DONE,
    **{(state, _I.FINAL): _S.DONE for state in _OPEN},
    **{(state, _I.ABORT): _S.DONE for state in _OPEN},
    (_S.ATTACHED, _I.CLOSE): _S.CLOSING,
    (_S.DETACHED, _I.CLOSE): _X,  # no response to end
    (_S.DETACHED, _I.EXPIRE): _S.CANCELLED,  # only a call nobody carries expires
    # CLOSING: attached, its response ending once what waits is written.
    (_S.CLOSING, _I.ATTACH): Outcome.REFUSED,  # that response still carries it
    (_S.CLOSING, _I.SEND): _S.CLOSING,
    (_S.CLOSING, _I.KEEPALIVE): _X,  # the response is ending: nothing to keep
    (_S.CLOSING, _I.CLOSE): _X,
    (_S.CLOSING, _I.DETACH): _S.DETACHED,
    (_S.CLOSING, _I.FINAL): _S.DONE,
    (_S.CLOSING, _I.ABORT): _S.DONE,
    (_S.CLOSING, _I.CANCEL): _S.CANCELLED,
    # DONE: the final message is on its way; the response ends after it.
    (_S.DONE, _I.KEEPALIVE): _X,
    (_S.DONE, _I.CLOSE): _X,
    (_S.DONE, _I.DETACH): _X,
    (_S.DONE, _I.ABORT): _X,  # the runner failed after its final message
    (_S.DONE, _I.CANCEL): _X,  # "Cancellation": a finished request's cancel is ignored
}
# A call stream the server may not end early: in the stateless era closing the
# response *is* the cancellation, and without an event store there is nothing
# to resume from. Asking is not wrong; the answer is no (and CLOSING is never
# reached).
_CALL_NOT_RESUMABLE = {
    **{key: answer for key, answer in _CALL.items() if key[0] is not _S.CLOSING},
    (_S.ATTACHED, _I.CLOSE): _X,
}

STREAM_TRANSITIONS: Mapping[tuple[StreamKind, bool], Table] = {
    ("call", True): _CALL,
    ("call", False): _CALL_NOT_RESUMABLE,
    ("listen", False): _LISTEN,
}
"""``(kind, resumable) -> {(state, input): outcome}``; a pair not listed is a
LocalProtocolError."""


def _rows(table: Table) -> dict[StreamState, tuple[Answer | None, ...]]:
    """The table as one tuple per state, indexed by input (the hot path's form)."""
    return {
        state: tuple(table.get((state, event)) for event in StreamInput) for state in StreamState
    }


_ROWS = {key: _rows(table) for key, table in STREAM_TRANSITIONS.items()}
_ENDED = (StreamState.DONE, StreamState.CANCELLED)
_SEND = StreamInput.SEND


class OutgoingStream:
    """Produces the bytes of one SSE stream: a tool call's, or a GET stream.

    Created by the endpoint (inside :class:`~flowkit.mcp.StartCall` or
    :class:`~flowkit.mcp.OpenListenStream`), never by the adapter.

    Attributes:
        kind: ``"call"`` (answers one request) or ``"listen"`` (GET stream,
            server-initiated notifications only, never a response).
        stream_id: id unique within the session; the prefix of event ids.
        session_id: the owning session's id (``None`` in the stateless era).
        request_id: the request this stream answers (``None`` for a GET
            stream; a ``subscriptions/listen`` stream's is its request's id,
            which is also the subscription id).
        subscription: for a ``subscriptions/listen`` stream, the notification
            filter the server agreed to (``{"toolsListChanged": True}``);
            ``None`` for every other stream.
        progress_token: the request's ``_meta.progressToken``, or ``None``.
        tool: the tool being called, for output-schema checks.
        state: where the stream is in :data:`STREAM_TRANSITIONS`.
        disconnect_cancels: the revision in force treats a disconnect as a
            cancel (see :meth:`Endpoint.stream_finished`).
        resumable: the server may end this stream's HTTP response early and
            the call goes on: a tool call's stream whose events are filed in
            an event store, in a revision where a disconnect is not a cancel
            (2025-11-25). The client reconnects with GET and
            ``Last-Event-ID`` after the priming event's ``retry`` ("SSE
            polling", SEP-1699).
        binding: the transport. On ``"stdio"`` every message is one line of
            JSON (no SSE framing, no event ids, no store: one shared channel
            has nothing to resume) and no keepalive is ever due.
    """

    __slots__ = (
        "_append",
        "_frame",
        "_log",
        "_on_done",
        "_prefix",
        "_progress",
        "_progress_head",
        "_result_type",
        "_retry_ms",
        "_row",
        "_rows",
        "_seq",
        "_store",
        "_total",
        "binding",
        "disconnect_cancels",
        "kind",
        "progress_token",
        "request_id",
        "resumable",
        "session_id",
        "state",
        "stream_id",
        "subscription",
        "tool",
    )

    def __init__(
        self,
        *,
        kind: StreamKind,
        stream_id: str,
        session_id: str | None = None,
        request_id: RequestId | None = None,
        progress_token: str | int | None = None,
        tool: Tool | None = None,
        store: EventStore | None = None,
        retry_ms: int | None = None,
        log_threshold: LogThreshold | None = None,
        result_type: bool = False,
        disconnect_cancels: bool = False,
        on_done: Callable[[OutgoingStream], None] | None = None,
        subscription: Mapping[str, Any] | None = None,
        binding: Binding = "http",
    ) -> None:
        self.kind = kind
        self.binding = binding
        self.subscription = subscription
        self.stream_id = stream_id
        self.session_id = session_id
        self.request_id = request_id
        self.progress_token = progress_token
        self.tool = tool
        self._store = store if session_id is not None and binding == "http" else None
        self._retry_ms = retry_ms
        self._log = log_threshold
        self._result_type = result_type
        self.disconnect_cancels = disconnect_cancels
        self.resumable = kind == "call" and self._store is not None and not disconnect_cancels
        self._rows = _ROWS[kind, self.resumable]
        self.state = StreamState.CREATED
        self._row = self._rows[self.state]
        self._on_done = on_done
        self._prefix = stream_id.encode("ascii") + b":"
        self._seq = 0
        self._progress: float | None = None
        # Where this stream's events are filed: the store's per-stream
        # appender when it offers one (InMemoryEventStore does), else a
        # generic EventStore.append with an EventId per event.
        self._append: Callable[[int, bytes], None] | None = None
        if self._store is not None:
            assert session_id is not None
            appender = getattr(self._store, "appender", None)
            self._append = (
                appender(session_id, stream_id) if appender is not None else self._append_generic
            )
        # This stream's data events as a %-format (with ids when stored).
        self._frame = (
            _LINE
            if binding == "stdio"
            else event_template(self._prefix if self._append is not None else None)
        )
        # The same for its progress events, the envelope and the token's JSON
        # included (None: no token, or one the fast path cannot take).
        self._progress_head: bytes | None = None
        if kind == "call" and (
            type(progress_token) is str
            or (type(progress_token) is int and -_MAX_FAST_INT <= progress_token <= _MAX_FAST_INT)
        ):
            # One format per event, made of the one writer of the envelope
            # (everything before the value in `{"progressToken": token,
            # "progress": 0}`) inside the one writer of SSE framing.
            template = orjson.dumps(
                notification_message(_PROGRESS, {"progressToken": progress_token, "progress": 0})
            )
            assert template.endswith(b"0}}")
            payload = template[:-3].replace(b"%", b"%%") + b"%d%s%s"
            self._progress_head = self._frame.replace(b"%s", payload, 1)
        # The last total and its JSON (a tool's total rarely changes).
        self._total: tuple[float | None, bytes] = (None, b"")

    def __repr__(self) -> str:
        return (
            f"<OutgoingStream {self.kind} {self.stream_id} request={self.request_id!r} "
            f"{self.state.value}>"
        )

    @property
    def cancelled(self) -> bool:
        """The client cancelled: stop the work; every emitter now yields b""."""
        return self.state is StreamState.CANCELLED

    @property
    def finished(self) -> bool:
        """Nothing more will ever be emitted (final message sent, or cancelled)."""
        return self.state in _ENDED

    @property
    def detached(self) -> bool:
        """Open, but no response carries it (its client may resume)."""
        return self.state is StreamState.DETACHED

    @property
    def closing(self) -> bool:
        """The response carrying the stream is to end once it has written what waits."""
        return self.state is StreamState.CLOSING

    # -- state machine --------------------------------------------------------

    def _step(self, event: StreamInput) -> bool:
        """Apply ``event``; True if its bytes should be produced."""
        after = self._row[event]
        if after is None:
            raise LocalProtocolError(
                f"cannot {event.name.lower()} a stream that is {self.state.value} ({self!r})"
            )
        if after is Outcome.IGNORED:
            return False
        if after is Outcome.REFUSED:
            raise stream_conflict()
        if after is not self.state:
            self.state = after
            self._row = self._rows[after]
            if after in _ENDED and self._on_done is not None:
                self._on_done(self)
        return after is not StreamState.CANCELLED

    def _append_generic(self, seq: int, data: bytes) -> None:
        assert self._store is not None
        assert self.session_id is not None
        self._store.append(self.session_id, EventId(self.stream_id, seq), data)

    def _emit(self, message: Mapping[str, Any]) -> bytes:
        return self._file(orjson.dumps(message))

    def _file(self, payload: bytes) -> bytes:
        """Frame one JSON payload as this stream's next event and file it."""
        append = self._append
        if append is None:
            return self._frame % payload
        self._seq += 1
        seq = self._seq
        data = self._frame % (seq, payload)
        append(seq, data)
        return data

    # -- what the adapter reports and asks ------------------------------------

    def open(self) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes]:
        """Status, headers and first bytes of the SSE response.

        On a resumable stream the first bytes are the priming event: an id and
        an empty ``data`` ("Sending Messages to the Server": it lets the client
        resume even if nothing else arrives), plus ``retry`` so a client whose
        connection we close knows when to come back.
        """
        if not self._step(StreamInput.OPEN):
            return 200, SSE_HEADERS, b""
        if self.subscription is not None:
            # "notifications/subscriptions/acknowledged" MUST come first and
            # reports the filter we agreed to honour.
            ack = {"notifications": dict(self.subscription)}
            return 200, SSE_HEADERS, self.notify("notifications/subscriptions/acknowledged", ack)
        if self._append is None:
            return 200, SSE_HEADERS, b""
        event_id = self._prefix + b"0"
        data = encode_event(b"", event_id=event_id, retry_ms=self._retry_ms)
        self._append(0, data)
        return 200, SSE_HEADERS, data

    def attach(self) -> None:
        """A resuming response (GET + ``Last-Event-ID``) now carries the stream.

        Raises:
            RemoteProtocolError: 409, a response still carries it.
        """
        self._step(StreamInput.ATTACH)

    def detach(self) -> None:
        """The response carrying the stream ended; the work (if any) goes on.

        The adapter reports this through :meth:`Endpoint.stream_finished`,
        which also decides whether the end is a cancel.
        """
        self._step(StreamInput.DETACH)

    def end_response(self) -> bool:
        """May the response carrying the stream end now, before the work does?

        A tool asks this (``CloseStream``). True moves the stream to
        ``CLOSING``: the adapter ends the response once it has written what
        waits, then reports :meth:`detach`, and the client resumes from the
        event store. False where the client could not resume (see
        ``resumable``), where no response carries the stream, or when it has
        finished.
        """
        return self._step(StreamInput.CLOSE)

    def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> bytes:
        """A ``notifications/progress`` event, or ``b""`` if not requested.

        Raises:
            LocalProtocolError: ``progress`` does not exceed the previous
                value, is not a finite number, or the stream is finished.
        """
        head = self._progress_head
        if (
            head is not None  # a call stream with a token the fast path takes
            and type(progress) is int
            and self._row[_SEND] is self.state  # the table: SEND emits, state kept
            and -_MAX_FAST_INT <= progress <= _MAX_FAST_INT
            and (message is None or type(message) is str)
        ):
            # The hot path: the checks below, in the order they would fail.
            last = self._progress
            if last is not None and progress <= last:
                raise LocalProtocolError(
                    f"progress must strictly increase: {progress!r} after {last!r}"
                )
            self._progress = progress
            return self._emit_progress(head, progress, total, message)
        if self.kind != "call":
            raise LocalProtocolError("progress belongs on a tool call's stream")
        if (
            isinstance(progress, bool)
            or not isinstance(progress, int | float)
            or not math.isfinite(progress)
        ):
            raise LocalProtocolError(f"progress must be a finite number, not {progress!r}")
        if not self._step(StreamInput.SEND):
            return b""
        if self._progress is not None and progress <= self._progress:
            raise LocalProtocolError(
                f"progress must strictly increase: {progress!r} after {self._progress!r}"
            )
        self._progress = progress
        if self.progress_token is None:
            return b""
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        return self._emit(notification_message(_PROGRESS, params))

    def _emit_progress(
        self, head: bytes, progress: int, total: float | None, message: str | None
    ) -> bytes:
        """The fast path of :meth:`progress`: the same bytes as the generic encoder.

        Only the message (and a changed total) goes through orjson; the
        envelope and the token are this stream's constants and the integer
        progress is formatted in place.
        """
        last_total, encoded_total = self._total
        if total is None:
            encoded_total = b""
        elif total is not last_total and not (
            type(total) is type(last_total) and total == last_total
        ):
            encoded_total = b',"total":' + orjson.dumps(total)
            self._total = (total, encoded_total)
        tail = b"}}" if message is None else b',"message":%s}}' % orjson.dumps(message)
        append = self._append
        if append is None:
            return head % (progress, encoded_total, tail)
        self._seq += 1
        seq = self._seq
        data = head % (seq, progress, encoded_total, tail)
        append(seq, data)
        return data

    def log(self, level: str, data: Any, logger: str | None = None) -> bytes | None:
        """A ``notifications/message`` event, or ``None`` if below the client's level.

        The threshold is read at each call, so a ``logging/setLevel`` arriving
        mid-stream takes effect at once. Never pass secrets in ``data``.
        """
        if level not in LOG_LEVELS:
            raise LocalProtocolError(f"unknown log level {level!r}")
        if self._log is None or not self._log.admits(level):
            return None
        if not self._step(StreamInput.SEND):
            return None
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        return self._emit(notification_message("notifications/message", params))

    def notify(self, method: str, params: Mapping[str, Any] | None = None) -> bytes:
        """Any other server notification (e.g. ``notifications/tools/list_changed``).

        On a ``subscriptions/listen`` stream it carries the subscription id in
        ``params._meta`` (the spec: MUST, on every notification of the stream).
        """
        if not self._step(StreamInput.SEND):
            return b""
        body = dict(params) if params is not None else None
        if self.subscription is not None:
            body = body if body is not None else {}
            meta = dict(body.get("_meta") or {})
            meta["io.modelcontextprotocol/subscriptionId"] = self.request_id
            body["_meta"] = meta
        return self._emit(notification_message(method, body))

    def request(self, request_id: str, method: str, params: Mapping[str, Any]) -> bytes:
        """A request to the client on this call's stream (handshake era).

        ``elicitation/create``, ``sampling/createMessage`` and ``roots/list``
        go out "on the SSE stream of the request they relate to"; the client
        answers by POST. It is an event like any other: filed in the event
        store, so a client that resumes sees it. ``b""`` after a cancel.
        """
        if self.kind != "call":
            raise LocalProtocolError("a request to the client belongs on a tool call's stream")
        if not self._step(StreamInput.SEND):
            return b""
        return self._emit(request_message(request_id, method, dict(params)))

    def input_required(self, result: Mapping[str, Any]) -> bytes:
        """The final response carrying an ``InputRequiredResult`` (SEP-2322); ends the stream.

        Only in the stateless era, whose results carry ``resultType``; the
        output schema does not apply (the tool has not produced its result).
        """
        if not self._result_type:
            raise LocalProtocolError("input-required results belong to the stateless era")
        assert self.request_id is not None
        payload = orjson.dumps(result_message(self.request_id, dict(result)))
        if not self._step(StreamInput.FINAL):
            return b""
        return self._file(payload)

    def result(self, result: Mapping[str, Any]) -> bytes:
        """The final response carrying a ``CallToolResult``; ends the stream.

        Raises:
            LocalProtocolError: already finished, not a call stream, or
                ``structuredContent`` missing or violating the tool's output
                schema (the spec's "Output Schema": servers MUST conform).
        """
        if self.tool is not None and not result.get("isError"):
            if self.tool.output_schema is not None and "structuredContent" not in result:
                raise LocalProtocolError(
                    f"tool {self.tool.name!r} declares an output_schema: "
                    "its result needs structuredContent"
                )
            if "structuredContent" in result:
                self.tool.validate_structured_content(result["structuredContent"])
        body = dict(result)
        if self._result_type:
            body.setdefault("resultType", "complete")
        assert self.request_id is not None or self.kind != "call"
        try:
            # Encoded before the step, so a refusal leaves the stream open.
            payload = orjson.dumps(result_message(self.request_id, body))  # type: ignore[arg-type]
        except TypeError as exc:  # orjson: not JSON-serialisable
            raise LocalProtocolError(f"result is not JSON-serialisable: {exc}") from exc
        if not self._step(StreamInput.FINAL):
            return b""
        return self._file(payload)

    def complete(
        self, result: Mapping[str, Any], *, dropped_logs: int = 0, undelivered_partials: int = 0
    ) -> bytes:
        """The work ended with ``result``: the final response, whatever the result.

        A result the rules refuse (output schema, not serialisable) is
        answered as the tool's failure instead, which the model can read.
        What never reached the client is reported in the result's ``_meta``
        (:func:`~flowkit.mcp.with_delivery`): ``dropped_logs`` (logs a slow
        client never saw) and ``undelivered_partials`` (partial results the
        client asked no carrier for).
        """
        result = with_delivery(
            dict(result), dropped_logs=dropped_logs, undelivered_partials=undelivered_partials
        )
        try:
            return self.result(result)
        except LocalProtocolError as exc:
            if self.finished:
                raise
            return self.fail(exc)

    def fail(self, exc: BaseException) -> bytes:
        """The work failed with ``exc``: a result with ``isError: true`` naming it.

        A tool's failure is a result, not a protocol error, so the model can
        read it ("Error Handling", 2025-11-25 tools).
        """
        name = self.tool.name if self.tool is not None else "?"
        return self.result(error_result(f"Tool {name!r} failed: {type(exc).__name__}: {exc}"))

    def abort(self) -> bytes:
        """The runner died without a final message: the core's JSON-RPC error.

        Ends the stream (so its session is not left busy). ``b""`` when
        nothing is owed: the stream had finished or was cancelled.
        """
        if not self._step(StreamInput.ABORT):
            return b""
        return self._emit(
            error_message(self.request_id, INTERNAL_ERROR, "Internal error: the tool runner failed")
        )

    def error(self, code: int, message: str, data: Any = None) -> bytes:
        """The final response as a JSON-RPC error; ends the stream.

        For failures *of the tool* use :meth:`fail` or :meth:`result` with
        :func:`~flowkit.mcp.error_result` instead: the model can read those.
        """
        if not self._step(StreamInput.FINAL):
            return b""
        return self._emit(error_message(self.request_id, code, message, data))

    def expire(self, code: int, message: str) -> bytes:
        """No client came back within the grace period: give up on the call.

        The final JSON-RPC error is filed in the event store, so a client
        that resumes later is answered; then, as after a cancel, nothing more
        goes out (the adapter stops the work). Only a detached call expires.
        """
        if self.state is not StreamState.DETACHED:
            self._step(StreamInput.EXPIRE)  # our misuse raises; after a cancel, nothing
            return b""
        payload = orjson.dumps(error_message(self.request_id, code, message))
        self._step(StreamInput.EXPIRE)
        return self._file(payload)

    def keepalive(self) -> bytes:
        """An SSE comment keeping an idle connection alive, or ``b""`` if none is due.

        The writer asks when it has been idle; the table answers: nothing
        while the response is ending early, after the final message, or after
        a cancel. Never on stdio: a comment is not a message, and nothing but
        messages may go to stdout.
        """
        if not self._step(StreamInput.KEEPALIVE) or self.binding != "http":
            return b""
        return encode_comment()

    def cancel(self) -> None:
        """Mark the request cancelled: from now on nothing is emitted.

        Called by the endpoint on ``notifications/cancelled``, on DELETE of
        the session, and (stateless era) when the client disconnects.
        """
        self._step(StreamInput.CANCEL)
