"""HTTP request heads: parse the headers MCP cares about, and judge them.

Everything here runs *before* the body is read, so a refused request costs no
body buffering and never touches session state: a request rejected here can
not create a session (the official SDKs' leak was the opposite). The checks
are pure functions of the head and the configuration.

Media-type handling is deliberately tolerant where HTTP is (``*/*``,
``application/*``, parameters, case, q-values) and strict where security is
(Origin, Host).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Literal, TypeAlias

import attrs

from ._errors import invalid_content_length

__all__ = [
    "Binding",
    "RequestHead",
    "accepts",
    "client_address",
    "host_allowed",
    "origin_allowed",
    "parse_head",
]

_WANTED = frozenset(
    {
        b"accept",
        b"content-type",
        b"content-length",
        b"origin",
        b"host",
        b"mcp-protocol-version",
        b"mcp-session-id",
        b"last-event-id",
        b"mcp-method",
        b"mcp-name",
        b"x-forwarded-for",
    }
)
_JOINABLE = frozenset({b"accept", b"x-forwarded-for"})
PARAM_HEADER_PREFIX = b"mcp-param-"
"""Prefix of the headers mirroring ``x-mcp-header`` tool arguments (2026-07-28)."""

#: Header values longer than this are judged afresh each time, never remembered.
MEMO_MAX_VALUE = 256
# Why remember verdicts at all: a server sees the same few Accept,
# Content-Type, Host and Origin values on nearly every request (one per kind
# of client), and judging them again costs microseconds at every call start.
# The memory is bounded twice: 512 verdicts per judgment (least recently used
# out first), and no value longer than MEMO_MAX_VALUE is kept, so a client
# sending a new huge header per request costs the plain judgment, no memory.
_remember = functools.lru_cache(maxsize=512)


def _short(value: str) -> bool:
    return len(value) <= MEMO_MAX_VALUE


Binding: TypeAlias = Literal["http", "stdio"]
"""The transport binding a message arrived on.

``"http"`` (Streamable HTTP) has a header layer that mirrors body fields and
frames a call's messages as SSE events on a per-request stream. ``"stdio"``
(and any newline-delimited byte stream, 2026-07-28 ``transports/stdio``) has
no header layer ("the body is the only source of truth") and one shared
channel: messages are lines, nothing is resumable and there is nothing to
keep alive.
"""


@attrs.frozen
class RequestHead:
    """The request line and the headers MCP looks at, decoded.

    Attributes:
        method: upper-case HTTP method.
        headers: every header, lowercase name to value; repeated ``Accept``
            headers joined with ``,``.
        duplicated: names of singleton headers that appeared more than once.
        binding: the transport; a ``"stdio"`` head has no headers at all, so
            nothing is checked against mirrored copies.
    """

    method: str
    headers: dict[str, str]
    duplicated: frozenset[str] = frozenset()
    binding: Binding = "http"

    def get(self, name: str) -> str | None:
        """The value of header ``name`` (lowercase), or ``None``."""
        return self.headers.get(name)


def parse_head(method: str, raw_headers: Iterable[tuple[bytes, bytes]]) -> RequestHead:
    """Decode the interesting headers of a request (ASGI-style byte pairs)."""
    headers: dict[str, str] = {}
    duplicated: set[str] = set()
    for raw_name, raw_value in raw_headers:
        name = raw_name.lower()
        if name not in _WANTED and not name.startswith(PARAM_HEADER_PREFIX):
            continue
        key = name.decode("latin-1")
        value = raw_value.decode("latin-1").strip(" \t")
        if key in headers:
            if name in _JOINABLE:
                headers[key] = f"{headers[key]}, {value}"
                continue
            duplicated.add(key)
        headers[key] = value
    return RequestHead(method.upper(), headers, frozenset(duplicated))


def may_open_session(head: RequestHead) -> bool:
    """Whether the request may be an ``initialize`` (it may open a session).

    Only from its head: it names no ``Mcp-Session-Id``, and its
    ``Mcp-Method``, if it has one (2026-07-28: every request has), is
    ``initialize``. A shared endpoint counts the cluster's sessions only for
    such a POST (``Endpoint.state_keys``), and an ``initialize`` under another
    method's header is refused, so the header cannot carry one past the cap;
    ``flowkit serve`` lines up only such first requests (``flowkit_http._pacing``).
    """
    return head.get("mcp-session-id") is None and head.get("mcp-method") in (None, "initialize")


def client_address(peer: str | None, head: RequestHead, trusted: Sequence[str]) -> str | None:
    """The address of the client behind ``peer`` (the TCP peer's address).

    ``X-Forwarded-For`` is believed only from a ``trusted`` proxy, and then
    read from the right: each trusted hop appended the address it saw, so the
    first address from the right that is not a trusted proxy is the client
    (the ones further left are the client's own claims). Anyone else's
    header is ignored, since a client can send any header it likes.
    """
    forwarded = head.get("x-forwarded-for")
    if peer is None or peer not in trusted or not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer


def _media_ranges(header: str) -> Iterable[tuple[str, str, float]]:
    for item in header.split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        kind, slash, sub = media.partition("/")
        if not slash or not kind or not sub:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        yield kind, sub, q


def accepts(accept: str | None, media_type: str) -> bool:
    """Whether an ``Accept`` header admits ``media_type`` (RFC 9110 12.5.1).

    The most specific matching range decides (``text/event-stream;q=0`` beats
    ``*/*``). A missing header accepts everything, as HTTP says; MCP clients
    always send one.
    """
    if accept is None:
        return True
    return (_accepts if _short(accept) else _judge_accept)(accept, media_type)


def _judge_accept(accept: str, media_type: str) -> bool:
    kind, _, sub = media_type.partition("/")
    best_rank, best_q = -1, 0.0
    for r_kind, r_sub, q in _media_ranges(accept):
        if r_kind == kind and r_sub == sub:
            rank = 2
        elif r_kind == kind and r_sub == "*":
            rank = 1
        elif r_kind == "*" and r_sub == "*":
            rank = 0
        else:
            continue
        if rank > best_rank:
            best_rank, best_q = rank, q
    return best_rank >= 0 and best_q > 0


_accepts = _remember(_judge_accept)


def content_type_is_json(value: str | None) -> bool:
    """``application/json`` with any parameters, but a charset only of UTF-8."""
    if value is None:
        return False
    return (_json_type if _short(value) else _judge_json_type)(value)


def _judge_json_type(value: str) -> bool:
    media, *params = value.split(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params:
        key, _, charset = param.partition("=")
        if key.strip().lower() == "charset" and charset.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


_json_type = _remember(_judge_json_type)


def _split_host(value: str) -> tuple[str, str | None]:
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        host, rest = value[: end + 1], value[end + 1 :]
        return host, rest[1:] if rest.startswith(":") else None
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, None
    return host, port


def _pattern_matches(pattern: str, host: str, port: str | None) -> bool:
    p_host, p_port = _split_host(pattern)
    if p_host != host:
        return False
    return p_port == "*" or p_port == port


def host_allowed(host: str | None, allowed: Sequence[str] | None) -> bool:
    """DNS-rebinding protection: is the ``Host`` one this server answers to?

    Patterns are ``host`` (no port), ``host:port`` or ``host:*`` (any port or
    none). ``allowed=None`` disables the check (a server behind a proxy that
    already validates Host).
    """
    if allowed is None:
        return True
    if host is None:
        return False
    if _short(host) and isinstance(allowed, tuple):  # a caller's list: judged afresh
        return _host_allowed(host, allowed)
    return _judge_host(host, allowed)


def _judge_host(host: str, allowed: Sequence[str]) -> bool:
    name, port = _split_host(host)
    if port is not None and not port.isdigit():
        return False
    return any(_pattern_matches(p, name, port) for p in allowed)


_host_allowed = _remember(_judge_host)


def origin_allowed(origin: str | None, allowed: Sequence[str] | None) -> bool:
    """Is a present ``Origin`` allowed? (absent: yes, e.g. non-browser clients).

    Patterns are exact origins (``https://app.example``) or end in ``:*`` for
    any port (``http://localhost:*``, which also admits no port);
    ``allowed=None`` allows every origin.
    """
    if origin is None or allowed is None:
        return True
    if _short(origin) and isinstance(allowed, tuple):
        return _origin_allowed(origin, allowed)
    return _judge_origin(origin, allowed)


def _judge_origin(origin: str, allowed: Sequence[str]) -> bool:
    origin = origin.strip().lower()
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern == origin:
            return True
        if pattern.endswith(":*"):
            base = pattern[:-2]
            if origin == base:
                return True
            rest = origin[len(base) :]
            if origin.startswith(base) and rest[:1] == ":" and rest[1:].isdigit():
                return True
    return False


_origin_allowed = _remember(_judge_origin)


def content_length(head: RequestHead) -> int | None:
    """The declared body length; RemoteProtocolError 400 if malformed."""
    value = head.get("content-length")
    if value is None:
        return None
    if not value.isdigit() or not value.isascii() or "content-length" in head.duplicated:
        raise invalid_content_length()
    return int(value)
