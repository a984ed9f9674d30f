"""What every method handler receives, and how every result is finished.

Shared by the tool methods (``_methods``) and the other server features
(``_features``): a handler is a plain function of the endpoint's state and a
:class:`RequestContext`, and each result goes through :func:`finish` so the
stateless era's ``resultType`` and caching hints are added in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._actions import Action
from ._headers import RequestHead
from ._jsonrpc import Request
from ._sessions import Session
from ._state import EndpointState
from ._stateless import RequestMeta
from ._versions import VersionPolicy

__all__ = ["Handler", "RequestContext", "finish"]


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
