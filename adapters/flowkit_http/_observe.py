"""The routes beside the MCP endpoint: metrics, dashboard, health.

:class:`ObservedApp` is an ASGI app in front of an :class:`MCPApp` (or in
front of nothing, on a separate address): it answers its own paths and hands
every other request, and the lifespan, to the app behind it.

Access policy (``docs/observability.md``, "Access"):

* ``/metrics`` and ``/dashboard`` (with its files and feed) answer ``GET``
  only, after the same ``Host`` and ``Origin`` allow-lists as the MCP
  endpoint (403) and the endpoint's ``authenticate`` hook when one is
  configured (401 with ``WWW-Authenticate``). Both reveal traffic shapes and
  tool names, so they are as private as the endpoint.
* ``/healthz`` and ``/readyz`` answer anyone: balancers and orchestrators
  probe them with an IP as the Host and no credentials, and they tell nothing
  but up and ready.
* To keep metrics and dashboard off the public address altogether, serve them
  on a separate one (``flowkit serve --observe-bind``): the main address then
  answers neither.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

import attrs
import trio

from flowkit.mcp import SSE_HEADERS, Reply, host_allowed, origin_allowed, parse_head

from ._asgi import ASGIApp, MCPApp, Receive, Scope, Send, _bare_lifespan, _send_reply
from ._dashboard import asset, open_feed
from ._health import healthz, readyz
from ._logformat import LOG_FORMATS
from ._metrics import metrics_registry, render_metrics

__all__ = ["Observability", "ObservedApp"]

_TEXT = ((b"content-type", b"text/plain; charset=utf-8"),)


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"a path must start with '/': {value!r}")
    return value.rstrip("/") or "/"


@attrs.frozen
class Observability:
    """What the adapter serves beside the MCP endpoint.

    Attributes:
        metrics: serve Prometheus metrics at ``metrics_path``.
        dashboard: serve the live dashboard at ``dashboard_path``.
        health: serve ``healthz_path`` and ``readyz_path``.
        dashboard_interval: seconds between two dashboard observations.
        readiness_timeout: seconds ``/readyz`` waits for the event store.
    """

    metrics: bool = True
    dashboard: bool = True
    health: bool = True
    metrics_path: str = attrs.field(default="/metrics", converter=_path)
    dashboard_path: str = attrs.field(default="/dashboard", converter=_path)
    healthz_path: str = attrs.field(default="/healthz", converter=_path)
    readyz_path: str = attrs.field(default="/readyz", converter=_path)
    dashboard_interval: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    readiness_timeout: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))


_Route = Callable[[Scope, Receive, Send], Awaitable[None]]


class ObservedApp:
    """ASGI app serving :class:`Observability`'s routes for ``mcp``.

    Args:
        mcp: the endpoint observed (its telemetry, sessions, event store and
            access configuration).
        options: which routes, at which paths.
        inner: the app behind this one (usually ``mcp``); ``None`` on a
            separate observability address, where other paths get 404.
    """

    def __init__(self, mcp: MCPApp, options: Observability, inner: ASGIApp | None) -> None:
        self.mcp = mcp
        self.options = options
        self.inner = inner
        self._feeds: set[trio.CancelScope] = set()
        routes: dict[str, tuple[bool, _Route]] = {}
        if options.metrics:
            self._registry = metrics_registry(mcp)
            routes[options.metrics_path] = (True, self._metrics)
        if options.dashboard:
            base = options.dashboard_path
            routes[base] = (True, self._page("dashboard.html"))
            routes[f"{base}/dashboard.js"] = (True, self._page("dashboard.js"))
            routes[f"{base}/events"] = (True, self._events)
        if options.health:
            routes[options.healthz_path] = (False, self._healthz)
            routes[options.readyz_path] = (False, self._readyz)
        self._routes = routes

    def close_streams(self) -> None:
        """Graceful shutdown: end every open dashboard feed (cleanly, at once)."""
        for scope in list(self._feeds):
            scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.dispatch(scope, receive, send)

    def dispatch(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """``__call__`` without a coroutine frame of its own (as ``MCPApp.dispatch``).

        What passes through to the app behind runs as that app's own
        coroutine (its ``dispatch``, if it has one), with none of this one.
        """
        if scope["type"] == "http":
            route = self._routes.get(scope["path"].rstrip("/") or "/")
            if route is not None:
                return self._route(scope, receive, send, *route)
        inner = self.inner
        if isinstance(inner, MCPApp | ObservedApp):
            return inner.dispatch(scope, receive, send)
        if inner is not None:
            return inner(scope, receive, send)
        return self._fallback(scope, receive, send)

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        private: bool,
        handler: Callable[[Scope, Receive, Send], Awaitable[None]],
    ) -> None:
        refusal = self._refuse(scope, private)
        if refusal is not None:
            self.mcp.telemetry.refused(refusal.status)
            await _send_reply(send, refusal)
        else:
            await handler(scope, receive, send)

    async def _fallback(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await _send_reply(send, Reply(404, _TEXT, b"Not Found\n"))
        elif scope["type"] == "lifespan":
            await _bare_lifespan(receive, send)

    def _refuse(self, scope: Scope, private: bool) -> Reply | None:
        """The access policy of the module docstring; ``None`` admits."""
        if scope["method"] != "GET":
            return Reply(405, (*_TEXT, (b"allow", b"GET")), b"Method Not Allowed\n")
        if not private:
            return None
        headers = scope["headers"]
        head = parse_head("GET", headers)
        config = self.mcp.endpoint.config
        if not host_allowed(head.get("host"), config.allowed_hosts):
            return Reply(403, _TEXT, b"Host not allowed\n")
        if not origin_allowed(head.get("origin"), config.allowed_origins):
            return Reply(403, _TEXT, b"Origin not allowed\n")
        if config.authenticate is not None and config.authenticate(headers) is None:
            challenge = config.www_authenticate.encode("latin-1")
            return Reply(
                401, (*_TEXT, (b"www-authenticate", challenge)), b"Authentication required\n"
            )
        return None

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = parse_head("GET", scope["headers"])
        body, content_type = render_metrics(self._registry, head.get("accept") or "")
        headers = ((b"content-type", content_type.encode("ascii")),)
        await _send_reply(send, Reply(200, headers, body))

    def _page(self, name: str) -> _Route:
        async def page(scope: Scope, receive: Receive, send: Send) -> None:
            await _send_reply(send, asset(name, self.options.dashboard_path))

        return page

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send_reply(send, healthz())

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send_reply(send, await readyz(self.mcp, self.options.readiness_timeout))

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The dashboard's SSE feed, until the browser leaves or the server stops."""
        await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
        disconnected = False
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal disconnected
                while (await receive())["type"] != "http.disconnect":
                    pass
                disconnected = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            self._feeds.add(nursery.cancel_scope)
            try:
                async with open_feed(self.mcp, self.options.dashboard_interval) as feed:
                    async for data in feed:
                        await send({"type": "http.response.body", "body": data, "more_body": True})
            finally:
                self._feeds.discard(nursery.cancel_scope)
        if not disconnected:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


# -- flowkit serve ------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``flowkit serve``'s observability flags."""
    group = parser.add_argument_group("observability (docs/observability.md)")
    group.add_argument(
        "--no-metrics", dest="metrics", action="store_false", help="do not serve /metrics"
    )
    group.add_argument(
        "--metrics-path", default="/metrics", metavar="PATH", help="default /metrics"
    )
    group.add_argument(
        "--no-dashboard", dest="dashboard", action="store_false", help="do not serve /dashboard"
    )
    group.add_argument(
        "--dashboard-path", default="/dashboard", metavar="PATH", help="default /dashboard"
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="log lines as text (default) or one JSON object each",
    )
    group.add_argument(
        "--observe-bind",
        default=None,
        metavar="HOST:PORT",
        help="serve /metrics and /dashboard on this address instead of the main one",
    )


def from_arguments(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[Observability, Observability | None, str | None]:
    """The main address's routes, the separate address's (if any), and its bind."""
    try:
        routes = Observability(
            metrics=args.metrics,
            dashboard=args.dashboard,
            metrics_path=args.metrics_path,
            dashboard_path=args.dashboard_path,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.observe_bind is None:
        return routes, None, None
    host, sep, port = args.observe_bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        parser.error(f"--observe-bind: expected HOST:PORT, got {args.observe_bind!r}")
    if not (args.metrics or args.dashboard):
        parser.error("--observe-bind with --no-metrics and --no-dashboard serves nothing")
    main = attrs.evolve(routes, metrics=False, dashboard=False)
    return main, routes, args.observe_bind
