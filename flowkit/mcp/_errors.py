"""Errors of the MCP protocol core, and the JSON-RPC error codes they carry.

The split follows h11: an error is either *ours* (the code driving the core
misused it: emitting progress after the final response, declaring a tool with
an invalid name) or *theirs* (the peer sent something we must refuse). Only the
second kind is ever turned into an HTTP response, and it carries everything
needed to build that response, so the adapter never has to invent a status
code::

    FlowkitError                      (flowkit._exceptions)
    └── ProtocolError                 any MCP / HTTP protocol violation
        ├── LocalProtocolError        we misused the core; a bug in our code
        └── RemoteProtocolError       the peer's fault; carries the answer
                                      (http_status, JSON-RPC code, message,
                                      data, extra headers, request id), which
                                      _actions.error_reply() turns into a
                                      Reply

:meth:`Endpoint.receive_request <flowkit.mcp.Endpoint.receive_request>` never
lets a ``RemoteProtocolError`` escape: it converts it into a
:class:`~flowkit.mcp.Reply` (whose ``error`` attribute keeps the exception for
logging). Lower-level helpers such as :func:`~flowkit.mcp.parse_message` raise
it directly.

Every refusal is built here, by a named constructor (``session_not_found()``,
``too_large(limit)``, ...), and every constructor takes its HTTP status and
JSON-RPC code from one table, :data:`REFUSALS`, which is also the table of
``docs/mcp.md``. The two statuses that differ by protocol revision (an unknown
method, a missing client capability) come from the revision's
:class:`~flowkit.mcp.VersionPolicy` and are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from .._exceptions import FlowkitError  # one pure module: flowkit/__init__.py loads lazily

__all__ = [
    "CALL_LOST",
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "PARSE_ERROR",
    "REFUSALS",
    "RESOURCE_NOT_FOUND",
    "SERVER_ERROR",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
]

# JSON-RPC 2.0 standard codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Implementation-defined server error range (-32000..-32099): used for
# transport-level refusals that have no better code (403, 404, 406, ...), the
# way the official SDKs do.
SERVER_ERROR = -32000
# MCP 2025 "Resource not found" (SEP-2164 moved it to -32602 in 2026-07-28).
RESOURCE_NOT_FOUND = -32002
# MCP 2026-07-28 protocol-defined codes.
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
# flowkit's own: a shared endpoint's call was lost with the instance running
# it (its lease expired before the call's response was stored).
CALL_LOST = -32010


class ProtocolError(FlowkitError):
    """Base class of every MCP protocol violation, whoever committed it."""


class LocalProtocolError(ProtocolError):
    """The code driving the core broke the protocol (a bug on our side).

    Raised, for example, when progress goes backwards, when anything is emitted
    after a request's final response, or when a tool is declared with an
    invalid name or schema. It is never sent to the peer.
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent something we must refuse; carries the reply to send.

    Attributes:
        http_status: HTTP status of the reply (400, 403, 404, 405, ...).
        code: JSON-RPC error code for the reply body.
        message: human-readable message (also ``str(exc)``).
        data: optional JSON-serialisable ``error.data``.
        headers: extra response headers (``Allow``, ``Retry-After``,
            ``WWW-Authenticate``) as ``(name, value)`` byte pairs.
        request_id: id of the offending request if it could be read, so the
            error response can be correlated; ``None`` gives an error
            response without ``id`` (allowed since MCP 2025-11-25).
        kind: the :data:`REFUSALS` row it came from (``"busy"``, ...), a
            bounded name logs can count by; ``None`` for the refusals whose
            status the revision decides.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int = 400,
        code: int = INVALID_REQUEST,
        data: Any = None,
        headers: Sequence[tuple[bytes, bytes]] = (),
        request_id: str | int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.http_status = http_status
        self.code = code
        self.data = data
        self.headers = tuple(headers)
        self.request_id = request_id

    def with_request_id(self, request_id: str | int | None) -> RemoteProtocolError:
        """Return a copy answering ``request_id`` (used once the body is parsed)."""
        return RemoteProtocolError(
            self.message,
            http_status=self.http_status,
            code=self.code,
            data=self.data,
            headers=self.headers,
            request_id=request_id,
            kind=self.kind,
        )

    def __repr__(self) -> str:
        return (
            f"RemoteProtocolError({self.message!r}, http_status={self.http_status}, "
            f"code={self.code})"
        )


REFUSALS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        # The body is not one JSON-RPC message.
        "parse_error": (400, PARSE_ERROR),
        "invalid_request": (400, INVALID_REQUEST),
        # A well-formed request whose method refuses it: a JSON-RPC error in a 200.
        "method_params": (200, INVALID_PARAMS),
        "request_in_flight": (200, INVALID_REQUEST),
        # A stateless-era retry whose requestState fails verification (tampered,
        # expired, another principal's or another request's) or whose
        # inputResponses are not an object of objects (SEP-2322).
        "request_state": (200, INVALID_PARAMS),
        # resources/read of an unknown URI: -32002 until 2025-11-25, then
        # -32602 (SEP-2164), the row above.
        "resource_not_found": (200, RESOURCE_NOT_FOUND),
        # User code behind resources/read, prompts/get or completion failed.
        "internal_error": (200, INTERNAL_ERROR),
        # The request's own metadata is wrong (initialize, the stateless _meta).
        "request_params": (400, INVALID_PARAMS),
        "header_mismatch": (400, HEADER_MISMATCH),
        "unsupported_version": (400, UNSUPPORTED_PROTOCOL_VERSION),
        # Transport-level refusals: -32000, the status says what went wrong.
        "bad_header": (400, SERVER_ERROR),
        "unauthorized": (401, SERVER_ERROR),
        "forbidden": (403, SERVER_ERROR),
        "not_found": (404, SERVER_ERROR),
        "method_not_allowed": (405, SERVER_ERROR),
        "not_acceptable": (406, SERVER_ERROR),
        "conflict": (409, SERVER_ERROR),
        "too_large": (413, SERVER_ERROR),
        "unsupported_media_type": (415, SERVER_ERROR),
        "busy": (503, SERVER_ERROR),
        "rate_limited": (429, SERVER_ERROR),
        # A call's instance died (its lease expired) before its response was
        # stored: the final event of the stream a resume follows (its 200).
        "call_lost": (200, CALL_LOST),
    }
)
"""Refusal kind -> (HTTP status, JSON-RPC code): where every status comes from."""

RequestIdOrNone = str | int | None


def _refuse(
    kind: str,
    message: str,
    request_id: RequestIdOrNone = None,
    *,
    data: Any = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> RemoteProtocolError:
    status, code = REFUSALS[kind]
    return RemoteProtocolError(
        message,
        http_status=status,
        code=code,
        data=data,
        headers=headers,
        request_id=request_id,
        kind=kind,
    )


def call_lost(instance: str, request_id: RequestIdOrNone) -> RemoteProtocolError:
    """The call's instance stopped renewing its lease before the call's response was stored.

    Running the call again elsewhere is not done (docs/scaling.md): the
    client decides whether to call again.
    """
    return _refuse(
        "call_lost",
        f"The call was lost with instance {instance!r}, which stopped before it finished",
        request_id,
        data={"instance": instance},
    )


# -- the JSON-RPC envelope -----------------------------------------------------


def parse_error() -> RemoteProtocolError:
    """The body is not UTF-8 JSON."""
    return _refuse("parse_error", "Parse error: body is not valid UTF-8 JSON")


def invalid_request(message: str, request_id: RequestIdOrNone = None) -> RemoteProtocolError:
    """JSON, but not one valid JSON-RPC message; or a message this era refuses."""
    return _refuse("invalid_request", message, request_id)


# -- a request's parameters and metadata -----------------------------------------


def method_params(message: str, request_id: RequestIdOrNone) -> RemoteProtocolError:
    """A method's ``params`` are malformed (unknown tool, bad cursor, level)."""
    return _refuse("method_params", message, request_id)


def request_state_refused(why: str, request_id: RequestIdOrNone) -> RemoteProtocolError:
    """A retry's ``requestState`` or ``inputResponses`` is refused (SEP-2322).

    "Servers MUST treat requestState as an attacker-controlled input ... and
    MUST reject state that fails verification": one message for every
    failure of the seal, so a forger learns nothing from it.
    """
    return _refuse("request_state", f"Invalid params: {why}", request_id)


def resource_not_found(uri: str, code: int, request_id: RequestIdOrNone) -> RemoteProtocolError:
    """No resource or template answers ``uri``; ``data.uri`` names it.

    The code is the revision's: -32002 until 2025-11-25, -32602 since
    SEP-2164 (2026-07-28 "Error Handling").
    """
    status = REFUSALS["resource_not_found"][0]
    return RemoteProtocolError(
        "Resource not found",
        code=code,
        http_status=status,
        data={"uri": uri},
        request_id=request_id,
    )


def internal_error(message: str, request_id: RequestIdOrNone) -> RemoteProtocolError:
    """User code answering a request failed; the message names what, not why."""
    return _refuse("internal_error", message, request_id)


def request_params(message: str, request_id: RequestIdOrNone) -> RemoteProtocolError:
    """The request's own metadata is malformed (``protocolVersion``, ``_meta``)."""
    return _refuse("request_params", message, request_id)


def request_in_flight(request_id: RequestIdOrNone) -> RemoteProtocolError:
    """A ``tools/call`` reuses an id still in flight in its session."""
    return _refuse(
        "request_in_flight",
        f"Request id {request_id!r} is already in flight in this session",
        request_id,
    )


def header_mismatch(message: str, request_id: RequestIdOrNone) -> RemoteProtocolError:
    """A mirrored header (stateless era) is missing, malformed or disagrees with the body."""
    return _refuse("header_mismatch", f"Header mismatch: {message}", request_id)


def unsupported_version(
    version: str, supported: Sequence[str], request_id: RequestIdOrNone = None
) -> RemoteProtocolError:
    """A revision we do not serve; ``data`` names those we do."""
    return _refuse(
        "unsupported_version",
        f"Unsupported protocol version: {version}",
        request_id,
        data={"supported": sorted(supported, reverse=True), "requested": version},
    )


def method_not_found(method: str, http_status: int) -> RemoteProtocolError:
    """An unknown JSON-RPC method; the status is the revision's (200 or 404)."""
    return RemoteProtocolError(
        f"Method not found: {method}", http_status=http_status, code=METHOD_NOT_FOUND
    )


def missing_capabilities(
    tool: str, missing: Mapping[str, Any], http_status: int, request_id: RequestIdOrNone
) -> RemoteProtocolError:
    """A tool needs client capabilities the client did not declare (status per revision)."""
    return RemoteProtocolError(
        f"Tool {tool!r} requires client capabilities: {', '.join(sorted(missing))}",
        http_status=http_status,
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        data={"requiredCapabilities": missing},
        request_id=request_id,
    )


# -- the HTTP transport ------------------------------------------------------------


def method_not_allowed(method: str, allow: Sequence[str], why: str = "") -> RemoteProtocolError:
    """An HTTP method the endpoint (or this revision) does not answer; ``Allow`` lists those."""
    return _refuse(
        "method_not_allowed",
        f"Method {method} not allowed{why}",
        headers=[(b"allow", ", ".join(allow).encode("ascii"))],
    )


def forbidden(what: str) -> RemoteProtocolError:
    """``Host`` or ``Origin`` not allowed."""
    return _refuse("forbidden", f"{what} not allowed")


def unauthorized(www_authenticate: str) -> RemoteProtocolError:
    """The authentication hook refused the request."""
    return _refuse(
        "unauthorized",
        "Authentication required",
        headers=[(b"www-authenticate", www_authenticate.encode("latin-1"))],
    )


def not_acceptable(needs: str) -> RemoteProtocolError:
    """``Accept`` does not cover what the response may be."""
    return _refuse("not_acceptable", f"Not Acceptable: Accept must cover {needs}")


def unsupported_media_type() -> RemoteProtocolError:
    """A POST body that is not ``application/json``."""
    return _refuse(
        "unsupported_media_type", "Unsupported Media Type: Content-Type must be application/json"
    )


def too_large(limit: int) -> RemoteProtocolError:
    """A body (or its ``Content-Length``) over the size limit."""
    return _refuse("too_large", f"Payload Too Large: the limit is {limit} bytes")


def repeated_header(name: str, mirrored: bool) -> RemoteProtocolError:
    """A singleton header sent twice: which value counts would be a guess.

    A gateway that authorises on the first value would otherwise see another
    call than the one that runs. A header mirroring the body (stateless era)
    is a header mismatch; any other is a bad header.
    """
    kind = "header_mismatch" if mirrored else "bad_header"
    return _refuse(kind, f"Bad Request: the {name} header appears more than once")


def event_too_large(size: int, limit: int) -> RemoteProtocolError:
    """An SSE event from the peer that grew past the decoder's bound unfinished."""
    return _refuse(
        "too_large", f"SSE event of over {size} bytes without its end (max_event_size is {limit})"
    )


def invalid_content_length() -> RemoteProtocolError:
    """A ``Content-Length`` that is not one decimal number."""
    return _refuse("bad_header", "Invalid Content-Length header")


def session_required(request_id: RequestIdOrNone = None) -> RemoteProtocolError:
    """No (or a repeated) ``Mcp-Session-Id`` where one is needed."""
    return _refuse(
        "bad_header", "Bad Request: a valid Mcp-Session-Id header is required", request_id
    )


def session_forbidden(request_id: RequestIdOrNone) -> RemoteProtocolError:
    """``initialize`` carrying ``Mcp-Session-Id``."""
    return invalid_request("initialize must not carry Mcp-Session-Id", request_id)


def session_not_found() -> RemoteProtocolError:
    """An unknown, expired, deleted or other principal's session id."""
    return _refuse("not_found", "Session not found")


def unknown_event_id() -> RemoteProtocolError:
    """A ``Last-Event-ID`` naming no stream of this session."""
    return _refuse("not_found", "Unknown Last-Event-ID for this session")


def listen_conflict() -> RemoteProtocolError:
    """A second concurrent GET stream in one session."""
    return _refuse("conflict", "Conflict: this session already has an open GET stream")


def stream_conflict() -> RemoteProtocolError:
    """A client resumes a stream that a connection still carries."""
    return _refuse("conflict", "Conflict: this stream is already connected")


def too_many_sessions(retry_after: int) -> RemoteProtocolError:
    """The session cap is reached; ``Retry-After`` says when one may be free."""
    return _refuse(
        "busy",
        "Too many sessions; retry later",
        headers=[(b"retry-after", str(retry_after).encode("ascii"))],
    )


def too_many_calls(what: str, limit: int, retry_after: int) -> RemoteProtocolError:
    """A ``tools/call`` over the calls-in-flight cap of its session or the server.

    The spec defines no error for it: 429 with ``Retry-After`` and -32000.
    """
    return _refuse(
        "rate_limited",
        f"Too many tool calls in flight ({limit} per {what}); retry later",
        headers=[(b"retry-after", str(retry_after).encode("ascii"))],
    )


def too_many_client_sessions(limit: int, retry_after: int) -> RemoteProtocolError:
    """``initialize`` from a client that holds ``max_sessions_per_client`` sessions."""
    return _refuse(
        "rate_limited",
        f"Too many sessions for this client ({limit}); retry later",
        headers=[(b"retry-after", str(retry_after).encode("ascii"))],
    )
