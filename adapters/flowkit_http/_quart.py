"""Quart integration: mount the MCP endpoint into a quart-trio app in one line.

``mount(app, server)`` wraps ``app.asgi_app`` with an :class:`MCPApp`: the
MCP path is served by the ASGI-level handler and every other path (and the
lifespan) goes on to Quart. So the endpoint's hot path costs none of Quart's
per-request and per-chunk work, and Quart's ``RESPONSE_TIMEOUT`` (60 s by
default), which would silently cut long tool-call streams, never applies to
it. The long-lived nursery in which tool calls run is opened around the app's
lifespan, i.e. for exactly as long as the app serves.

``observe=Observability()`` adds ``/metrics``, ``/dashboard``, ``/healthz`` and
``/readyz`` in front of the endpoint (off for ``mount``, on for
``flowkit serve``; see ``docs/observability.md``).
"""

from __future__ import annotations

from typing import Any, cast

from quart_trio import QuartTrio

from flowkit.mcp import Endpoint

from ._asgi import ASGIApp, MCPApp
from ._observe import Observability, ObservedApp
from ._server import MCPServer, StreamSettings

__all__ = ["create_app", "mount"]


def mount(
    app: QuartTrio,
    target: MCPServer | Endpoint,
    path: str = "/mcp",
    *,
    settings: StreamSettings | None = None,
    observe: Observability | None = None,
) -> MCPApp:
    """Serve ``target`` at ``path`` inside ``app``; returns the :class:`MCPApp`.

    Call it once the app exists (before serving). Routes the app defines at
    ``path`` are shadowed, and so are the paths of ``observe``'s routes
    when given (the :class:`ObservedApp` is kept in
    ``app.extensions["flowkit_observe"]``).
    """
    # Quart types its ASGI callables with hypercorn's TypedDicts; ours are
    # plain mappings. Same protocol, different spelling: cast at the seam.
    fallback = cast(ASGIApp, app.asgi_app)
    mcp = MCPApp(target, path=path, fallback=fallback, settings=settings)
    front: ASGIApp = mcp
    if observe is not None:
        front = app.extensions["flowkit_observe"] = ObservedApp(mcp, observe, mcp)
    app.asgi_app = cast(Any, front)  # type: ignore[method-assign]
    app.extensions["flowkit_mcp"] = mcp
    return mcp


def create_app(
    target: MCPServer | Endpoint,
    path: str = "/mcp",
    *,
    settings: StreamSettings | None = None,
    observe: Observability | None = None,
) -> QuartTrio:
    """A standalone quart-trio app serving ``target`` at ``path`` (``flowkit serve``)."""
    name = target.name if isinstance(target, MCPServer) else target.config.server_name
    app = QuartTrio(f"flowkit-{name}")
    mount(app, target, path, settings=settings, observe=observe)
    return app
