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
                                      flowkit.mcp.error_reply() turns into a
                                      Reply

:meth:`Endpoint.receive_request <flowkit.mcp.Endpoint.receive_request>` never
lets a ``RemoteProtocolError`` escape: it converts it into a
:class:`~flowkit.mcp.Reply` (whose ``error`` attribute keeps the exception for
logging). Lower-level helpers such as :func:`~flowkit.mcp.parse_message` raise
it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowkit._exceptions import FlowkitError

__all__ = [
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "PARSE_ERROR",
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
# MCP 2026-07-28 protocol-defined codes.
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022


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
    ) -> None:
        super().__init__(message)
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
        )

    def __repr__(self) -> str:
        return (
            f"RemoteProtocolError({self.message!r}, http_status={self.http_status}, "
            f"code={self.code})"
        )


def stream_conflict() -> RemoteProtocolError:
    """409: a client resumes a stream that a connection still carries."""
    return RemoteProtocolError(
        "Conflict: this stream is already connected", http_status=409, code=SERVER_ERROR
    )
