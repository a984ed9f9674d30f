"""``/healthz`` and ``/readyz``: answers for load balancers and orchestrators.

* ``/healthz``: the process is alive and its event loop answers. Always 200
  while the server runs (an orchestrator restarts the process otherwise).
* ``/readyz``: the app can serve tool calls now -- the ASGI lifespan has
  started (the long-lived nursery is open) and, when a store is external
  and can be probed -- the shared store of ``MCPServer(shared=...)`` (Redis),
  or an event store with an async ``ping()`` -- it answered within the
  timeout. 503 otherwise, so a
  balancer takes the instance out of rotation without killing it.

Both answer ``text/plain`` with ``Cache-Control: no-store``, and neither
needs credentials: they tell nothing but up and ready (``docs/observability.md``,
"Access").
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import trio

from flowkit.mcp import Reply

if TYPE_CHECKING:
    from ._asgi import MCPApp

__all__ = ["healthz", "readyz"]

_HEADERS = ((b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store"))


def _reply(status: int, text: str) -> Reply:
    return Reply(status, _HEADERS, text.encode())


def healthz() -> Reply:
    """Alive (answering at all is the check)."""
    return _reply(200, "ok\n")


async def readyz(app: MCPApp, store_timeout: float) -> Reply:
    """Ready to serve tool calls, with the reason when not."""
    if not app.serving:
        return _reply(503, "not ready: the ASGI lifespan has not started\n")
    # The shared store (MCPServer(shared=...), e.g. Redis), else the event store.
    shared = app.shared_store
    store = shared if shared is not None else app.endpoint.event_store
    ping = getattr(store, "ping", None)
    if ping is not None and inspect.iscoroutinefunction(ping):
        try:
            with trio.fail_after(store_timeout):
                await ping()
        except trio.TooSlowError:
            return _reply(
                503, f"not ready: the event store did not answer in {store_timeout:g} s\n"
            )
        except Exception as exc:
            return _reply(503, f"not ready: the event store failed: {type(exc).__name__}\n")
    return _reply(200, "ready\n")
