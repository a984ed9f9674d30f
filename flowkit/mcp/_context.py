"""What every method handler receives, and how every result is finished.

Shared by the tool methods (``_methods``) and the other server features
(``_features``): a handler is a plain function of the endpoint's state and a
:class:`RequestContext`, and each result goes through :func:`finish` so the
stateless era's ``resultType`` and caching hints are added in one place.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._actions import Action
from ._headers import RequestHead
from ._jsonrpc import Request
from ._replay import Replay, start_replay
from ._sessions import Session
from ._state import EndpointState
from ._stateless import RequestMeta
from ._toolcontext import ToolContext
from ._versions import VersionPolicy

__all__ = ["Handler", "RequestContext", "finish", "replay_for", "request_context"]


@attrs.frozen
class RequestContext:
    """One request being handled, in either era."""

    request: Request
    policy: VersionPolicy
    session: Session | None  # handshake era, but for initialize
    meta: RequestMeta | None  # stateless era
    head: RequestHead
    principal: str | None = None
    client: str | None = None  # what the per-client session cap counts

    @property
    def client_capabilities(self) -> Any:
        """What the client declared: the request's own (stateless era) or at ``initialize``."""
        if self.meta is not None:
            return self.meta.client_capabilities
        return getattr(self.session, "client_capabilities", None)


Handler = Callable[[EndpointState, RequestContext], Action]


def finish(
    state: EndpointState,
    policy: VersionPolicy,
    result: dict[str, Any],
    *,
    cacheable: bool = False,
    ttl_ms: int | None = None,
) -> dict[str, Any]:
    """Add the stateless era's ``resultType`` and, on cacheable results, caching hints.

    Cacheable are ``server/discover``, ``tools/list``, ``prompts/list``,
    ``resources/list``, ``resources/templates/list`` and ``resources/read``
    (2026-07-28 "Caching": "Cacheable Results"). ``ttl_ms`` overrides the
    configured ``ttlMs`` (a resource whose contents change by the second).
    """
    if policy.result_type:
        result["resultType"] = "complete"
        if cacheable:
            result["ttlMs"] = state.config.cache_ttl_ms if ttl_ms is None else ttl_ms
            result["cacheScope"] = state.config.cache_scope
    return result


def replay_for(state: EndpointState, ctx: RequestContext) -> Replay | None:
    """The stateless era's replay of a request that may ask its client (SEP-2322).

    ``None`` in the handshake era, where requests go out on the call's stream.

    Raises:
        RemoteProtocolError: -32602, its ``requestState`` or
            ``inputResponses`` is refused (see :func:`~flowkit.mcp._replay.start_replay`).
    """
    if not ctx.policy.result_type:
        return None
    request = ctx.request
    sealer = state.request_state_sealer()
    return start_replay(sealer, request.method, request.params, ctx.principal, request.id)


def request_context(state: EndpointState, ctx: RequestContext) -> ToolContext:
    """The :class:`ToolContext` of a request answered in one reply (``prompts/get``).

    In the stateless era its questions end the request with an
    ``InputRequiredResult``; in the handshake era there is no stream to ask
    on, so asking raises ``ClientRequestError`` (tools can: they stream).
    """
    replay = replay_for(state, ctx)
    caps = ctx.client_capabilities
    return ToolContext(
        request_id=ctx.request.id,
        call_id=replay.call_id if replay is not None else secrets.token_urlsafe(12),
        protocol_version=ctx.policy.version,
        principal=ctx.principal,
        client_capabilities=caps if isinstance(caps, Mapping) else None,
        round=replay.round if replay is not None else 0,
        ask=replay,
    )
