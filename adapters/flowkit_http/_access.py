"""The access log of ``flowkit serve --access-log``: one line per HTTP request.

An ASGI wrapper rather than hypercorn's access log, which writes a streamed
response twice when the stream closes as its last chunk is sent (once as
``- -``, once with its status). This writes exactly one line when the app
is done with the request: client, request line, status (``-`` if no response
was started, e.g. a stateless-era client that left), body bytes actually sent
(which a streamed response's headers cannot say) and seconds::

    flowkit_http.access: 127.0.0.1:51234 "POST /mcp HTTP/1.1" 200 1432 0.004211s

No header is logged, so an ``Authorization`` header never reaches the log.
It is off by default: a line per request costs the event loop time under load.
"""

from __future__ import annotations

import logging

import trio

from ._asgi import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLog"]


class AccessLog:
    """Wrap an ASGI app; log each HTTP request at INFO on ``logger`` when it ends.

    Args:
        app: the ASGI app to serve (lifespan and other scopes pass through).
        logger: where the lines go; ``flowkit_http.access`` by default.
    """

    def __init__(self, app: ASGIApp, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.logger = logger if logger is not None else logging.getLogger("flowkit_http.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = trio.current_time()
        status: int | None = None
        sent = 0

        async def counted(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            client = scope.get("client")
            self.logger.info(
                '%s "%s %s HTTP/%s" %s %d %.6fs',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                scope["path"],
                scope.get("http_version", "1.1"),
                status if status is not None else "-",
                sent,
                trio.current_time() - start,
            )
