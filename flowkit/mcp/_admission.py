"""Admission: may this request proceed? Decided from the head alone.

The checks run before the body is read, so a refused request costs no body
buffering and never touches session state (a rejected request can not create
a session). Order, security first so a hostile request learns nothing else:

1. HTTP method (405 with ``Allow``);
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
    forbidden,
    method_not_allowed,
    not_acceptable,
    session_not_found,
    session_required,
    too_large,
    unauthorized,
    unsupported_media_type,
    unsupported_version,
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

__all__ = ["admit", "allowed_methods"]

RawHeaders = Sequence[tuple[bytes, bytes]]


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
    sessions: SessionRegistry | None,
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
        raise method_not_allowed(head.method, methods)
    if not host_allowed(head.get("host"), config.allowed_hosts):
        raise forbidden("Host")
    if not origin_allowed(head.get("origin"), config.allowed_origins):
        raise forbidden("Origin")
    if config.authenticate is not None:
        principal = config.authenticate(headers)
        if principal is None:
            raise unauthorized(config.www_authenticate)
    accept = head.get("accept")
    if head.method == "POST":
        if not (accepts(accept, "application/json") and accepts(accept, "text/event-stream")):
            raise not_acceptable("application/json and text/event-stream")
        if not content_type_is_json(head.get("content-type")):
            raise unsupported_media_type()
        length = content_length(head)
        if length is not None and length > config.max_body_size:
            raise too_large(config.max_body_size)
    elif head.method == "GET" and not accepts(accept, "text/event-stream"):
        raise not_acceptable("text/event-stream")
    version = head.get("mcp-protocol-version")
    if version is not None and version not in config.versions:
        if before_body and head.method == "POST":
            return principal, None
        raise unsupported_version(version, list(config.versions))
    policy = config.versions.get(version) if version is not None else None
    if policy is not None and not policy.sessions:
        # Stateless era: no GET stream, no DELETE, Mcp-Session-Id ignored
        # ("Backward Compatibility", 2026-07-28 Streamable HTTP).
        if head.method != "POST":
            raise method_not_allowed(head.method, ("POST",), f" in protocol version {version}")
        return principal, None
    session_id = head.get("mcp-session-id")
    if "mcp-session-id" in head.duplicated or (session_id is None and head.method != "POST"):
        raise session_required()
    if session_id is None or sessions is None:  # None: the caller looks it up later
        return principal, None
    session = sessions.get(session_id, principal)
    if session is None:
        raise session_not_found()
    return principal, session
