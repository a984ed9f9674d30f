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

The lifecycle is the table :data:`STREAM_TRANSITIONS`. Breaking a rule is our
bug, so it raises :class:`~flowkit.mcp.LocalProtocolError`; emitting after a
cancel is a race the adapter cannot avoid, so it quietly yields ``b""``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ._errors import LocalProtocolError
from ._events import EventStore
from ._jsonrpc import RequestId
from ._sessions import LOG_LEVELS
from ._sse import EventId, encode_comment, encode_event, encode_json_event

if TYPE_CHECKING:
    from ._sessions import Session
    from ._tools import Tool

_MAX_FAST_INT = 2**63 - 1  # orjson's integer range (it refuses larger ones)


__all__ = ["SSE_HEADERS", "STREAM_TRANSITIONS", "OutgoingStream", "StreamInput", "StreamState"]

SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream"),
    # no-transform stops proxies from compressing (and so buffering) events.
    (b"cache-control", b"no-cache, no-transform"),
    # nginx and friends buffer responses unless told not to.
    (b"x-accel-buffering", b"no"),
)
"""Response headers of every SSE stream the core opens."""


class StreamState(enum.Enum):
    """Where a stream is in its life."""

    CREATED = "created"  # handed to the adapter, headers not produced yet
    OPEN = "open"  # headers produced; notifications may flow
    DONE = "done"  # the final message was produced
    CANCELLED = "cancelled"  # the client cancelled: nothing more goes out


class StreamInput(enum.Enum):
    """What the adapter asks of a stream."""

    OPEN = "open"
    SEND = "send"  # a notification or a keepalive
    FINAL = "final"  # the response (result or error)
    CANCEL = "cancel"


_S, _I = StreamState, StreamInput
STREAM_TRANSITIONS: dict[tuple[StreamState, StreamInput], StreamState] = {
    (_S.CREATED, _I.OPEN): _S.OPEN,
    (_S.CREATED, _I.CANCEL): _S.CANCELLED,
    (_S.OPEN, _I.SEND): _S.OPEN,
    (_S.OPEN, _I.FINAL): _S.DONE,
    (_S.OPEN, _I.CANCEL): _S.CANCELLED,
    (_S.DONE, _I.CANCEL): _S.DONE,  # cancel after completion: ignored
    # After a cancel every input is accepted and produces nothing.
    (_S.CANCELLED, _I.OPEN): _S.CANCELLED,
    (_S.CANCELLED, _I.SEND): _S.CANCELLED,
    (_S.CANCELLED, _I.FINAL): _S.CANCELLED,
    (_S.CANCELLED, _I.CANCEL): _S.CANCELLED,
}
"""(state, input) -> next state; a pair not listed is a LocalProtocolError."""
_OPEN, _SEND = StreamState.OPEN, StreamInput.SEND

StreamKind = Literal["call", "listen"]


class OutgoingStream:
    """Produces the bytes of one SSE stream: a tool call's, or a GET stream.

    Created by the endpoint (inside :class:`~flowkit.mcp.StartCall` or
    :class:`~flowkit.mcp.OpenListenStream`), never by the adapter.

    Attributes:
        kind: ``"call"`` (answers one request) or ``"listen"`` (GET stream,
            server-initiated notifications only, never a response).
        stream_id: id unique within the session; the prefix of event ids.
        request_id: the request this stream answers (``None`` for a GET
            stream; a ``subscriptions/listen`` stream's is its request's id,
            which is also the subscription id).
        subscription: for a ``subscriptions/listen`` stream, the notification
            filter the server agreed to (``{"toolsListChanged": True}``);
            ``None`` for every other stream.
        progress_token: the request's ``_meta.progressToken``, or ``None``.
        tool: the tool being called, for output-schema checks.
        attached: an HTTP response is currently carrying this stream.
        disconnect_cancels: the revision in force treats a disconnect as a
            cancel (see :meth:`Endpoint.stream_finished`).
    """

    __slots__ = (
        "_append",
        "_log_level",
        "_on_done",
        "_prefix",
        "_progress",
        "_progress_head",
        "_result_type",
        "_retry_ms",
        "_seq",
        "_session",
        "_session_id",
        "_store",
        "_total",
        "attached",
        "disconnect_cancels",
        "kind",
        "progress_token",
        "request_id",
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
        session: Session | None,
        request_id: RequestId | None = None,
        progress_token: str | int | None = None,
        tool: Tool | None = None,
        store: EventStore | None = None,
        retry_ms: int | None = None,
        log_level: str | None = None,
        result_type: bool = False,
        disconnect_cancels: bool = False,
        on_done: Callable[[OutgoingStream], None] | None = None,
        subscription: Mapping[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self.subscription = subscription
        self.stream_id = stream_id
        self.request_id = request_id
        self.progress_token = progress_token
        self.tool = tool
        self.state = StreamState.CREATED
        self.attached = False
        self._session = session
        self._store = store if session is not None else None
        self._retry_ms = retry_ms
        self._log_level = None if log_level is None else LOG_LEVELS[log_level]
        self._result_type = result_type
        self.disconnect_cancels = disconnect_cancels
        self._on_done = on_done
        self._prefix = stream_id.encode("ascii") + b":"
        self._seq = 0
        self._progress: float | None = None
        self._session_id = session.id if session is not None else None
        # Where this stream's events are filed: the store's per-stream
        # appender when it offers one (InMemoryEventStore does), else a
        # generic EventStore.append with an EventId per event.
        self._append: Callable[[int, bytes], None] | None = None
        if self._store is not None:
            appender = getattr(self._store, "appender", None)
            self._append = (
                appender(self._session_id, stream_id)
                if appender is not None
                else self._append_generic
            )
        # The constant bytes of this stream's progress events, the token's
        # JSON included (None: no token, or one the fast path cannot take).
        self._progress_head: bytes | None = None
        if kind == "call" and (
            type(progress_token) is str
            or (type(progress_token) is int and -_MAX_FAST_INT <= progress_token <= _MAX_FAST_INT)
        ):
            self._progress_head = (
                b'data: {"jsonrpc":"2.0","method":"notifications/progress",'
                b'"params":{"progressToken":%s,"progress":' % orjson.dumps(progress_token)
            )
        # The last total and its JSON (a tool's total rarely changes).
        self._total: tuple[float | None, bytes] = (None, b"")

    def __repr__(self) -> str:
        return (
            f"<OutgoingStream {self.kind} {self.stream_id} request={self.request_id!r} "
            f"{self.state.value}>"
        )

    @property
    def session_id(self) -> str | None:
        """The owning session's id (``None`` in the stateless era)."""
        return self._session_id

    @property
    def cancelled(self) -> bool:
        """The client cancelled: stop the work; every emitter now yields b""."""
        return self.state is StreamState.CANCELLED

    @property
    def resumable(self) -> bool:
        """The server may end this stream's HTTP response early, and the call goes on.

        True for a tool call's stream whose events are filed in an event
        store, in a revision where a disconnect is not a cancel (2025-11-25):
        the client reconnects with GET and ``Last-Event-ID`` after the
        priming event's ``retry`` and gets the rest ("SSE polling", SEP-1699).
        False in the stateless era (closing the stream *is* cancellation, and
        there is nothing to resume from) and without an event store.
        """
        return self.kind == "call" and self._store is not None and not self.disconnect_cancels

    @property
    def finished(self) -> bool:
        """Nothing more will ever be emitted (final message sent, or cancelled)."""
        return self.state in (StreamState.DONE, StreamState.CANCELLED)

    # -- state machine --------------------------------------------------------

    def _step(self, event: StreamInput) -> bool:
        """Apply ``event``; True if its bytes should be produced."""
        before = self.state
        if before is _OPEN and event is _SEND:  # the hot path: OPEN stays OPEN
            return True
        try:
            after = STREAM_TRANSITIONS[before, event]
        except KeyError:
            raise LocalProtocolError(
                f"cannot {event.value} a stream that is {before.value} ({self!r})"
            ) from None
        self.state = after
        finished = after is not before and after in (StreamState.DONE, StreamState.CANCELLED)
        if finished and self._on_done is not None:
            self._on_done(self)
        return after is not StreamState.CANCELLED

    def _append_generic(self, seq: int, data: bytes) -> None:
        assert self._store is not None
        assert self._session_id is not None
        self._store.append(self._session_id, EventId(self.stream_id, seq), data)

    def _emit(self, message: Mapping[str, Any]) -> bytes:
        append = self._append
        if append is None:
            return encode_json_event(message)
        self._seq += 1
        seq = self._seq
        data = encode_json_event(message, b"%s%d" % (self._prefix, seq))
        append(seq, data)
        return data

    # -- what the adapter calls -----------------------------------------------

    def open(self) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes]:
        """Status, headers and first bytes of the SSE response.

        On a resumable stream the first bytes are the priming event: an id and
        an empty ``data`` ("Sending Messages to the Server": it lets the client
        resume even if nothing else arrives), plus ``retry`` so a client whose
        connection we close knows when to come back.
        """
        self.attached = True
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
            and self.state is _OPEN
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
        return self._emit({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})

    def _emit_progress(
        self, head: bytes, progress: int, total: float | None, message: str | None
    ) -> bytes:
        """The fast path of :meth:`progress`: the same bytes as the generic encoder.

        Only the message (and a changed total) goes through orjson; the
        envelope and the token are this stream's constants and the event id
        and the integer progress are formatted in place.
        """
        last_total, encoded_total = self._total
        if total is None:
            encoded_total = b""
        elif total is not last_total and not (
            type(total) is type(last_total) and total == last_total
        ):
            encoded_total = b',"total":' + orjson.dumps(total)
            self._total = (total, encoded_total)
        tail = b"}}\n\n" if message is None else b',"message":%s}}\n\n' % orjson.dumps(message)
        append = self._append
        if append is None:
            return b"%s%d%s%s" % (head, progress, encoded_total, tail)
        self._seq += 1
        seq = self._seq
        data = b"id: %s%d\n%s%d%s%s" % (self._prefix, seq, head, progress, encoded_total, tail)
        append(seq, data)
        return data

    def log(self, level: str, data: Any, logger: str | None = None) -> bytes | None:
        """A ``notifications/message`` event, or ``None`` if below the client's level.

        The threshold is read at each call, so a ``logging/setLevel`` arriving
        mid-stream takes effect at once. Never pass secrets in ``data``.
        """
        rank = LOG_LEVELS.get(level)
        if rank is None:
            raise LocalProtocolError(f"unknown log level {level!r}")
        threshold = self._session.log_level if self._session is not None else self._log_level
        if threshold is None or rank < threshold:
            return None
        if not self._step(StreamInput.SEND):
            return None
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        return self._emit({"jsonrpc": "2.0", "method": "notifications/message", "params": params})

    def notify(self, method: str, params: Mapping[str, Any] | None = None) -> bytes:
        """Any other server notification (e.g. ``notifications/tools/list_changed``).

        On a ``subscriptions/listen`` stream it carries the subscription id in
        ``params._meta`` (the spec: MUST, on every notification of the stream).
        """
        if not self._step(StreamInput.SEND):
            return b""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        body = dict(params) if params is not None else None
        if self.subscription is not None:
            body = body if body is not None else {}
            meta = dict(body.get("_meta") or {})
            meta["io.modelcontextprotocol/subscriptionId"] = self.request_id
            body["_meta"] = meta
        if body is not None:
            message["params"] = body
        return self._emit(message)

    def result(self, result: Mapping[str, Any]) -> bytes:
        """The final response carrying a ``CallToolResult``; ends the stream.

        Raises:
            LocalProtocolError: already finished, not a call stream, or
                ``structuredContent`` missing or violating the tool's output
                schema (the spec's "Output Schema": servers MUST conform).
        """
        self._check_final()
        if self.tool is not None and not result.get("isError"):
            if self.tool.output_schema is not None and "structuredContent" not in result:
                raise LocalProtocolError(
                    f"tool {self.tool.name!r} declares an output_schema: "
                    "its result needs structuredContent"
                )
            if "structuredContent" in result:
                self.tool.validate_structured_content(result["structuredContent"])
        if not self._step(StreamInput.FINAL):
            return b""
        body = dict(result)
        if self._result_type:
            body.setdefault("resultType", "complete")
        try:
            return self._emit({"jsonrpc": "2.0", "id": self.request_id, "result": body})
        except TypeError as exc:  # orjson: not JSON-serialisable
            raise LocalProtocolError(f"result is not JSON-serialisable: {exc}") from exc

    def error(self, code: int, message: str, data: Any = None) -> bytes:
        """The final response as a JSON-RPC error; ends the stream.

        For failures *of the tool* use :meth:`result` with
        :func:`~flowkit.mcp.error_result` instead: the model can read those.
        """
        self._check_final()
        if not self._step(StreamInput.FINAL):
            return b""
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        return self._emit({"jsonrpc": "2.0", "id": self.request_id, "error": error})

    def keepalive(self) -> bytes:
        """An SSE comment keeping an idle connection (and its proxies) alive."""
        if not self._step(StreamInput.SEND):
            return b""
        return encode_comment()

    def cancel(self) -> None:
        """Mark the request cancelled: from now on nothing is emitted.

        Called by the endpoint on ``notifications/cancelled``, on DELETE of
        the session, and (stateless era) when the client disconnects.
        """
        self._step(StreamInput.CANCEL)

    def _check_final(self) -> None:
        if self.kind != "call":
            raise LocalProtocolError("a GET stream never carries a response")
