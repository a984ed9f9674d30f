"""Admission: may this request proceed? Decided from the head alone.

The checks run before the body is read, so a refused request costs no body
buffering and never touches session state (a rejected request can not create
a session). Order, security first so a hostile request learns nothing else:

1. HTTP method (405 with ``Allow``);
   a singleton header sent twice (``Host``, ``Origin``, ``MCP-Protocol-Version``,
   ``Mcp-Session-Id``, ``Mcp-Method``, ``Mcp-Name``) is 400: which copy would
   win differs between a gateway and this server, so it answers for neither
   (-32020 for the headers that mirror the body, else -32000);
2. ``Host`` allow-list, DNS-rebinding protection (403);
3. ``Origin`` allow-list (403);
4. authentication hook (401 with ``WWW-Authenticate``);
5. ``Accept`` (406), ``Content-Type`` (415), ``Content-Length`` (413/400);
6. ``MCP-Protocol-Version`` (400, -32022); a stateless-era version skips the
   session and refuses GET/DELETE (405);
7. ``Mcp-Session-Id``: required except on POST (400), must name a live
   session of this principal (404).
"""

from __future__ import annotations

from collections.abc import Sequence

from ._config import EndpointConfig
from ._errors import (
    HEADER_MISMATCH,
    SERVER_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    RemoteProtocolError,
)
from ._headers import (
    RequestHead,
    accepts,
    content_length,
    content_type_is_json,
    host_allowed,
    origin_allowed,
)
from ._sessions import Session, SessionRegistry

__all__ = ["admit", "allowed_methods", "too_large"]

RawHeaders = Sequence[tuple[bytes, bytes]]

# Singleton headers refused when repeated, in the order they are named.
_SINGLETONS = ("host", "origin", "mcp-protocol-version", "mcp-session-id", "mcp-method", "mcp-name")
_MIRRORED = frozenset({"mcp-protocol-version", "mcp-method", "mcp-name"})


def allowed_methods(config: EndpointConfig) -> tuple[str, ...]:
    """The HTTP methods the endpoint answers, in ``Allow`` order."""
    methods = ["POST"]
    if config.get_stream:
        methods.append("GET")
    if config.allow_delete:
        methods.append("DELETE")
    return tuple(methods)


def admit(
    head: RequestHead,
    headers: RawHeaders,
    principal: str | None,
    config: EndpointConfig,
    sessions: SessionRegistry,
    *,
    before_body: bool = False,
) -> tuple[str | None, Session | None]:
    """Decide from the head alone whether a request may proceed.

    With ``before_body`` (the adapter asking before it reads the body), a
    POST naming an unsupported ``MCP-Protocol-Version`` is let through: its
    refusal must carry the request's JSON-RPC id, which only the body has
    ("All error responses carry the request JSON-RPC id", 2026-07-28).

    Returns:
        The principal the request acts for, and its session if it named a
        live one (``None`` for a POST without ``Mcp-Session-Id``, which may
        be an ``initialize``, and for stateless-era requests).

    Raises:
        RemoteProtocolError: the refusal, in the order of the module doc.
    """
    methods = allowed_methods(config)
    if head.method not in methods:
        raise RemoteProtocolError(
            f"Method {head.method} not allowed",
            http_status=405,
            code=SERVER_ERROR,
            headers=[(b"allow", ", ".join(methods).encode("ascii"))],
        )
    for name in _SINGLETONS:
        if name in head.duplicated:
            raise RemoteProtocolError(
                f"Bad Request: the {name} header appears more than once",
                http_status=400,
                code=HEADER_MISMATCH if name in _MIRRORED else SERVER_ERROR,
            )
    if not host_allowed(head.get("host"), config.allowed_hosts):
        raise RemoteProtocolError("Host not allowed", http_status=403, code=SERVER_ERROR)
    if not origin_allowed(head.get("origin"), config.allowed_origins):
        raise RemoteProtocolError("Origin not allowed", http_status=403, code=SERVER_ERROR)
    if config.authenticate is not None:
        principal = config.authenticate(headers)
        if principal is None:
            raise RemoteProtocolError(
                "Authentication required",
                http_status=401,
                code=SERVER_ERROR,
                headers=[(b"www-authenticate", config.www_authenticate.encode("latin-1"))],
            )
    accept = head.get("accept")
    if head.method == "POST":
        if not (accepts(accept, "application/json") and accepts(accept, "text/event-stream")):
            raise RemoteProtocolError(
                "Not Acceptable: Accept must cover application/json and text/event-stream",
                http_status=406,
                code=SERVER_ERROR,
            )
        if not content_type_is_json(head.get("content-type")):
            raise RemoteProtocolError(
                "Unsupported Media Type: Content-Type must be application/json",
                http_status=415,
                code=SERVER_ERROR,
            )
        length = content_length(head)
        if length is not None and length > config.max_body_size:
            raise too_large(config)
    elif head.method == "GET" and not accepts(accept, "text/event-stream"):
        raise RemoteProtocolError(
            "Not Acceptable: Accept must cover text/event-stream",
            http_status=406,
            code=SERVER_ERROR,
        )
    version = head.get("mcp-protocol-version")
    if version is not None and version not in config.versions:
        if before_body and head.method == "POST":
            return principal, None
        raise RemoteProtocolError(
            f"Unsupported protocol version: {version}",
            http_status=400,
            code=UNSUPPORTED_PROTOCOL_VERSION,
            data={"supported": sorted(config.versions, reverse=True), "requested": version},
        )
    policy = config.versions.get(version) if version is not None else None
    if policy is not None and not policy.sessions:
        # Stateless era: no GET stream, no DELETE, Mcp-Session-Id ignored
        # ("Backward Compatibility", 2026-07-28 Streamable HTTP).
        if head.method != "POST":
            raise RemoteProtocolError(
                f"Method {head.method} not allowed in protocol version {version}",
                http_status=405,
                code=SERVER_ERROR,
                headers=[(b"allow", b"POST")],
            )
        return principal, None
    session_id = head.get("mcp-session-id")
    if session_id is None and head.method != "POST":
        raise RemoteProtocolError(
            "Bad Request: a valid Mcp-Session-Id header is required",
            http_status=400,
            code=SERVER_ERROR,
        )
    if session_id is None:
        return principal, None
    session = sessions.get(session_id, principal)
    if session is None:
        raise RemoteProtocolError("Session not found", http_status=404, code=SERVER_ERROR)
    return principal, session


def too_large(config: EndpointConfig) -> RemoteProtocolError:
    """The 413 refusal for a body over ``config.max_body_size``."""
    return RemoteProtocolError(
        f"Payload Too Large: the limit is {config.max_body_size} bytes",
        http_status=413,
        code=SERVER_ERROR,
    )
