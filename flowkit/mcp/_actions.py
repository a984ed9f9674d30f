"""What the endpoint asks the adapter to do, as frozen values.

:meth:`Endpoint.receive_request <flowkit.mcp.Endpoint.receive_request>`
returns exactly one of these per HTTP request. The adapter dispatches on the
type (``match action: case Reply(): ...``) and never needs to look inside a
JSON-RPC message itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import attrs

from ._errors import RemoteProtocolError, internal_error
from ._jsonrpc import RequestId, Response, encode_error, encode_result
from ._replay import Replay
from ._stream import OutgoingStream
from ._toolcontext import Ask, InputRequired, Notify, ToolContext
from ._tools import Tool

__all__ = [
    "Action",
    "Answer",
    "Cancel",
    "Headers",
    "Invoke",
    "OpenListenStream",
    "Reply",
    "Resume",
    "StartCall",
    "error_reply",
    "json_reply",
]

Headers: TypeAlias = tuple[tuple[bytes, bytes], ...]
"""Response headers as lowercase ``(name, value)`` byte pairs (ASGI style)."""

_JSON: Headers = ((b"content-type", b"application/json"),)


@attrs.frozen
class Reply:
    """A complete HTTP response: send it and you are done.

    Attributes:
        status: HTTP status code.
        headers: response headers.
        body: response body (empty for 202 and 200-on-DELETE).
        error: the refusal this reply answers, kept for logging.
        ends_session: id of a session this request ended (DELETE); the
            adapter drops whatever it keeps for that session.
        cancelled: streams whose work the adapter must now stop (the calls
            in flight in a deleted session).
    """

    status: int
    headers: Headers = ()
    body: bytes = b""
    error: RemoteProtocolError | None = attrs.field(default=None, eq=False, repr=False)
    ends_session: str | None = None
    cancelled: tuple[OutgoingStream, ...] = ()


@attrs.frozen
class StartCall:
    """Run a tool: a validated ``tools/call`` to execute.

    The adapter starts ``tool.fn(**arguments)`` in a long-lived nursery,
    writes ``stream.open()``'s status, headers and first bytes, then the bytes
    of ``stream.progress()`` / ``stream.log()`` / ``stream.result()`` as the
    work proceeds, and calls :meth:`Endpoint.stream_finished` when the HTTP
    response ends.

    Attributes:
        session_id: owning session (``None`` in the stateless era).
        request_id: the JSON-RPC id being answered.
        tool: the tool to run.
        arguments: arguments validated against ``tool.input_schema``.
        progress_token: ``params._meta.progressToken`` or ``None``.
        stream: produces the response stream's bytes.
        trace_context: the W3C trace context the client sent in
            ``params._meta`` (``traceparent``, ``tracestate``; string values
            only), for the adapter's span of the call.
    """

    session_id: str | None
    request_id: RequestId
    tool: Tool
    arguments: dict[str, Any]
    progress_token: str | int | None
    stream: OutgoingStream = attrs.field(eq=False)
    trace_context: Mapping[str, str] = attrs.field(factory=dict, eq=False)
    protocol_version: str = ""
    principal: str | None = None
    client_capabilities: Mapping[str, Any] | None = attrs.field(default=None, eq=False)
    call_id: str = ""
    replay: Replay | None = attrs.field(default=None, eq=False)

    def context(self, ask: Ask | None, notify: Notify | None = None) -> ToolContext:
        """The :class:`~flowkit.mcp.ToolContext` to pass the tool (``tool.context_param``).

        ``ask`` sends requests to the client and waits for the answers, and
        ``notify`` sends notifications on the call's stream (handshake era:
        the adapter's); in the stateless era the core's replay answers
        instead and neither is used.
        """
        live = self.replay is None
        return ToolContext(
            request_id=self.request_id,
            call_id=self.replay.call_id if self.replay is not None else self.call_id,
            protocol_version=self.protocol_version,
            principal=self.principal,
            client_capabilities=self.client_capabilities,
            round=self.replay.round if self.replay is not None else 0,
            ask=self.replay if self.replay is not None else ask,
            notify=notify if live else None,
        )


@attrs.frozen
class Cancel:
    """The client cancelled an in-flight call: stop its work, send nothing.

    ``stream`` is already marked cancelled (it emits nothing more); the
    adapter cancels the pipeline behind it and sends ``reply`` (202).
    """

    session_id: str | None
    request_id: RequestId
    stream: OutgoingStream = attrs.field(eq=False)
    reply: Reply


@attrs.frozen
class Answer:
    """The client answered a request a tool sent it: resume that tool.

    Hand ``response`` to whatever waits for ``ask_id`` on ``stream``'s call
    (``flowkit.mcp.result_of`` turns it into the result or the client's
    error), then send ``reply`` (202). A response nothing waits for (late,
    repeated, another session's) is no ``Answer``, only a 202.
    """

    stream: OutgoingStream = attrs.field(eq=False)
    ask_id: str
    response: Response
    reply: Reply


@attrs.frozen
class OpenListenStream:
    """Open a stream of server-initiated notifications.

    Either a session's standalone GET stream (handshake era) or the response
    stream of a ``subscriptions/listen`` request (stateless era,
    ``session_id`` is ``None``; ``stream.open()``'s first bytes are the
    acknowledgement). Write ``stream.open()``, then whatever
    :meth:`Endpoint.list_changed` hands out for this stream and
    ``stream.keepalive()`` produces; call :meth:`Endpoint.stream_finished`
    when the connection closes, which frees the session's single GET slot or
    ends the subscription.
    """

    session_id: str | None
    stream: OutgoingStream = attrs.field(eq=False)


@attrs.frozen
class Resume:
    """Replay a stream after ``Last-Event-ID`` (GET), then maybe continue it.

    Attributes:
        session_id: owning session.
        stream_id: the stream being resumed.
        status: HTTP status (200).
        headers: SSE response headers.
        replay: encoded events after the client's last id, in order; write
            them first.
        live: the stream if its work is still running: write its further
            output to this connection and call ``Endpoint.stream_finished``
            when it closes. ``None``: the stream is over, end the response
            after the replay (unless ``follow``).
        follow: a shared endpoint's stream that has not ended, wherever its
            call runs: after the replay, write what the shared store appends
            to it after this seq (``SharedStore.follow``), until its end, then
            call ``Endpoint.follow_finished``. The store is the only truth,
            so the call's own instance follows it there too.
    """

    session_id: str
    stream_id: str
    status: int
    headers: Headers
    replay: tuple[bytes, ...]
    live: OutgoingStream | None = attrs.field(eq=False)
    follow: int | None = None


def _no_refusal(error: Exception) -> RemoteProtocolError | None:
    return None


@attrs.frozen
class Invoke:
    """Run user code whose value is the answer (``resources/read``, ``prompts/get``...).

    The request is valid; only the user's function remains, which may be
    plain or async and may do I/O, so the adapter runs it::

        try:
            value = action.call()
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            reply = action.failed(exc)
        else:
            reply = action.reply(value)

    and sends ``reply``; an :class:`~flowkit.mcp.InputRequired` from the
    function (a stateless-era prompt asking its client) is answered with
    ``action.input_required(exc)``. These methods are pure and never raise.

    Attributes:
        request_id: the JSON-RPC id being answered.
        method: the JSON-RPC method (for logs and spans).
        call: the user's function, its arguments bound.
        outcome: turns the function's value into the JSON-RPC result;
            raises ``TypeError``/``ValueError`` for a value it cannot send, or
            :class:`RemoteProtocolError` for one that means a refusal.
        refusal: maps an exception of the function to the refusal it means
            (a template reader's ``LookupError`` is "Resource not found"), or
            ``None`` for an internal error.
    """

    request_id: RequestId
    method: str
    call: Callable[[], Any] = attrs.field(eq=False)
    outcome: Callable[[Any], Any] = attrs.field(eq=False, repr=False)
    refusal: Callable[[Exception], RemoteProtocolError | None] = attrs.field(
        default=_no_refusal, eq=False, repr=False
    )

    def reply(self, value: Any) -> Reply:
        """The reply for the value the function returned."""
        try:
            return json_reply(self.request_id, self.outcome(value))
        except RemoteProtocolError as exc:
            return error_reply(exc.with_request_id(self.request_id))
        except (TypeError, ValueError) as exc:
            message = f"Internal error: {self.method} produced an invalid result ({exc})"
            return error_reply(internal_error(message, self.request_id))

    def input_required(self, needed: InputRequired) -> Reply:
        """The reply when the function (a prompt asking its client) needs answers first."""
        return json_reply(self.request_id, needed.result)

    def failed(self, error: Exception) -> Reply:
        """The reply when the function raised ``error``.

        The message names the method, not the exception: its text may hold
        what the client must not see. The adapter logs the exception.
        """
        refusal = self.refusal(error)
        if refusal is None:
            refusal = internal_error(f"Internal error: {self.method} failed", self.request_id)
        return error_reply(refusal.with_request_id(self.request_id))


Action: TypeAlias = Reply | StartCall | Cancel | Answer | OpenListenStream | Resume | Invoke
"""Everything ``receive_request`` can return."""


def json_reply(request_id: RequestId, result: Any, headers: Headers = ()) -> Reply:
    """A 200 ``application/json`` reply carrying a JSON-RPC result."""
    return Reply(200, _JSON + headers, encode_result(request_id, result))


def error_reply(error: RemoteProtocolError) -> Reply:
    """The HTTP reply a :class:`RemoteProtocolError` describes.

    The body is always a JSON-RPC error response (with the request's id when
    known): clients of the stateless era use it to tell a modern server's
    refusal from a legacy server's 400/404.
    """
    try:
        body = encode_error(error.request_id, error.code, error.message, error.data)
    except TypeError:  # unserialisable data: drop it rather than fail to answer
        body = encode_error(error.request_id, error.code, error.message)
    return Reply(error.http_status, _JSON + error.headers, body, error=error)
