"""Endpoint configuration: one frozen value, defaults safe for a local server."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._versions import VERSIONS, VersionPolicy

__all__ = ["LOCALHOST_HOSTS", "LOCALHOST_ORIGINS", "Authenticator", "EndpointConfig"]

LOCALHOST_HOSTS: tuple[str, ...] = ("localhost:*", "127.0.0.1:*", "[::1]:*")
"""Default ``Host`` allow-list: a local server answers only to local names, which
defeats DNS rebinding (a hostile page's name resolving to 127.0.0.1)."""

LOCALHOST_ORIGINS: tuple[str, ...] = tuple(
    f"{scheme}://{host}:*"
    for scheme in ("http", "https")
    for host in ("localhost", "127.0.0.1", "[::1]")
)
"""Default ``Origin`` allow-list: only pages served from this machine."""

Authenticator = Callable[[Sequence[tuple[bytes, bytes]]], str | None]
"""Maps the raw request headers to a principal, or ``None`` to refuse (401)."""


def _key_tuple(keys: Sequence[bytes]) -> tuple[bytes, ...]:
    return tuple(keys)


@attrs.frozen
class EndpointConfig:
    """How an :class:`~flowkit.mcp.Endpoint` behaves.

    Attributes:
        server_name: ``serverInfo.name``.
        server_version: ``serverInfo.version``.
        server_title: optional ``serverInfo.title``.
        instructions: optional ``instructions`` in the ``initialize`` result.
        allowed_hosts: ``Host`` allow-list (see :func:`~flowkit.mcp.host_allowed`);
            ``None`` disables the check, e.g. behind a proxy on a public name.
            A refused Host gets 403, as the MCP conformance suite expects.
        allowed_origins: ``Origin`` allow-list for requests that carry one
            (browsers); ``None`` allows all. A refused Origin gets 403.
        max_body_size: largest POST body accepted, in bytes (else 413).
        session_idle_timeout: seconds an idle session lives (expiry is on by
            default: sessions of vanished clients must not leak).
        max_sessions: cap on live sessions; ``initialize`` beyond it gets 503
            with ``Retry-After`` (the seconds until the next session expires).
        max_sessions_per_client: live sessions one client may hold (``None``:
            no such cap); beyond it ``initialize`` gets 429 with
            ``Retry-After`` (when that client's next session expires). A
            client is its principal when there is authentication, else its
            remote address (see ``trusted_proxies``), so one client's flood
            cannot take every slot of ``max_sessions``.
        trusted_proxies: addresses of proxies whose ``X-Forwarded-For`` is
            believed when a request comes from them (behind a proxy every
            client has the proxy's address); from anyone else it is ignored.
        handshake_timeout: seconds a session may wait for
            ``notifications/initialized`` before it expires (if no client is
            attached), so a flood of unfinished handshakes frees the cap in
            seconds, not after ``session_idle_timeout``; ``None`` disables it.
        busy_retry_after: ``Retry-After`` seconds when the cap is reached and
            no idle session is about to expire.
        detached_call_grace: seconds a handshake-era call may run with no
            response carrying it (its client hung up and has not resumed)
            before it is cancelled; a client resuming it later gets the
            final JSON-RPC error that ended it. A disconnect is not a cancel
            in that era, so without this a vanished client's call runs
            forever. ``None`` disables it.
        max_calls_per_session: tool calls one session may have in flight;
            one more gets 429 with ``Retry-After`` (JSON-RPC -32000).
        max_calls: tool calls in flight on the whole endpoint, both eras.
        calls_retry_after: the ``Retry-After`` seconds of those 429s.
        page_size: tools per ``tools/list`` page.
        sse_retry_ms: ``retry`` field of priming events (client reconnect
            delay); ``None`` omits it.
        default_log_level: level in force until ``logging/setLevel``.
        get_stream: offer the standalone GET stream (else GET gets 405).
        allow_delete: let clients end sessions with DELETE (else 405).
        tools_list_changed: advertise ``tools.listChanged``.
        resources_list_changed: advertise ``resources.listChanged`` (and send
            ``notifications/resources/list_changed`` when resources come and go).
        prompts_list_changed: advertise ``prompts.listChanged`` (likewise).
        cache_ttl_ms: ``ttlMs`` of cacheable stateless-era results
            (``server/discover``, the ``*/list`` methods, ``resources/read``);
            0 means "always re-fetch".
        cache_scope: ``cacheScope`` of those results; use ``"private"`` when
            the tool list depends on who asks.
        authenticate: optional hook resolving a principal from the headers;
            when set, ``None`` from it gives 401 with ``WWW-Authenticate``.
        www_authenticate: the ``WWW-Authenticate`` value of a 401.
        versions: the protocol revisions served (see :data:`~flowkit.mcp.VERSIONS`).
        ask_timeout: seconds a tool waits for the client's answer to an
            elicitation, sampling or roots request (handshake era) before
            ``ClientRequestTimeout``; the request is then cancelled.
        request_state_keys: AES-GCM keys (16, 24 or 32 bytes) sealing the
            stateless era's ``requestState``: the first seals, all are
            accepted, so a key rotates by being put first and the old one
            kept until its states expire. Empty: a random key per process,
            which another instance cannot open (a retry served elsewhere is
            refused): configure the same keys on every instance.
        request_state_ttl: seconds a sealed ``requestState`` stays valid.
    """

    server_name: str = "flowkit"
    server_version: str = "0.1.0"
    server_title: str | None = None
    instructions: str | None = None
    allowed_hosts: tuple[str, ...] | None = LOCALHOST_HOSTS
    allowed_origins: tuple[str, ...] | None = LOCALHOST_ORIGINS
    max_body_size: int = 4 * 1024 * 1024
    session_idle_timeout: float = 30 * 60.0
    max_sessions: int = 1000
    handshake_timeout: float | None = 10.0
    max_sessions_per_client: int | None = None
    trusted_proxies: tuple[str, ...] = ()
    busy_retry_after: int = 30
    detached_call_grace: float | None = 5 * 60.0
    max_calls_per_session: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    max_calls: int = attrs.field(default=1024, validator=attrs.validators.ge(1))
    calls_retry_after: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    page_size: int = 100
    sse_retry_ms: int | None = 1000
    default_log_level: str = "info"
    get_stream: bool = True
    allow_delete: bool = True
    tools_list_changed: bool = False
    resources_list_changed: bool = False
    prompts_list_changed: bool = False
    cache_ttl_ms: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    cache_scope: Literal["public", "private"] = "public"
    authenticate: Authenticator | None = attrs.field(default=None, eq=False)
    www_authenticate: str = "Bearer"
    versions: Mapping[str, VersionPolicy] = attrs.field(default=VERSIONS, eq=False)
    ask_timeout: float = attrs.field(default=300.0, validator=attrs.validators.gt(0))
    request_state_keys: tuple[bytes, ...] = attrs.field(
        default=(), converter=_key_tuple, eq=False, repr=False
    )
    request_state_ttl: float = attrs.field(default=600.0, validator=attrs.validators.gt(0))

    @request_state_keys.validator
    def _check_keys(self, _attribute: Any, keys: tuple[bytes, ...]) -> None:
        for key in keys:
            if not isinstance(key, bytes) or len(key) not in (16, 24, 32):
                raise ValueError("request_state_keys must be AES keys of 16, 24 or 32 bytes")

    def server_info(self) -> dict[str, Any]:
        """The ``serverInfo`` object."""
        info: dict[str, Any] = {"name": self.server_name, "version": self.server_version}
        if self.server_title is not None:
            info["title"] = self.server_title
        return info
