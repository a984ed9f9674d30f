"""Quart integration: mount the MCP endpoint into a quart-trio app in one line.

``mount(app, server)`` wraps ``app.asgi_app`` with an :class:`MCPApp`: the
MCP path is served by the ASGI-level handler and every other path (and the
lifespan) goes on to Quart. So the endpoint's hot path costs none of Quart's
per-request and per-chunk work, and Quart's ``RESPONSE_TIMEOUT`` (60 s by
default), which would silently cut long tool-call streams, never applies to
it. The long-lived nursery in which tool calls run is opened around the app's
lifespan, i.e. for exactly as long as the app serves.
"""

from __future__ import annotations

from typing import Any, cast

from quart_trio import QuartTrio

from flowkit.mcp import Endpoint

from ._asgi import ASGIApp, MCPApp
from ._server import MCPServer, StreamSettings

__all__ = ["create_app", "mount"]


def mount(
    app: QuartTrio,
    target: MCPServer | Endpoint,
    path: str = "/mcp",
    *,
    settings: StreamSettings | None = None,
) -> MCPApp:
    """Serve ``target`` at ``path`` inside ``app``; returns the :class:`MCPApp`.

    Call it once the app exists (before serving). Routes the app defines at
    ``path`` are shadowed.
    """
    # Quart types its ASGI callables with hypercorn's TypedDicts; ours are
    # plain mappings. Same protocol, different spelling: cast at the seam.
    fallback = cast(ASGIApp, app.asgi_app)
    mcp = MCPApp(target, path=path, fallback=fallback, settings=settings)
    app.asgi_app = cast(Any, mcp)  # type: ignore[method-assign]
    app.extensions["flowkit_mcp"] = mcp
    return mcp


def create_app(
    target: MCPServer | Endpoint,
    path: str = "/mcp",
    *,
    settings: StreamSettings | None = None,
) -> QuartTrio:
    """A standalone quart-trio app serving ``target`` at ``path`` (``flowkit serve``)."""
    name = target.name if isinstance(target, MCPServer) else target.config.server_name
    app = QuartTrio(f"flowkit-{name}")
    mount(app, target, path, settings=settings)
    return app
