"""What the client needs of a transport: Streamable HTTP or a server subprocess's stdio.

The :class:`~flowkit_client.Client` speaks in exchanges: it *opens* a
request (a JSON-RPC request, notification or answer) and reads the
:class:`Reply`'s messages up to the response it waits for. Over HTTP an
exchange is one POST and its body (``_transport.HTTPTransport``); over stdio
it is one line on the server's stdin, and the reply is the messages of the
shared stdout that belong to that request (``_stdio.StdioTransport``).

What differs between the two bindings, beyond bytes, is three facts the
client reads from the transport, never from its type:

* ``header_layer``: HTTP carries ``Mcp-Method``, ``Mcp-Name`` and
  ``Mcp-Param-*`` headers; stdio has no header layer, so a 2026-07-28 call
  never lists the tools just to learn which arguments a tool mirrors.
* ``closing_cancels``: in 2026-07-28 closing a call's HTTP response stream
  *is* its cancellation; on stdio nothing closes, so a call is cancelled with
  ``notifications/cancelled`` in both eras.
* ``always_listen``: on stdio every message the server sends that belongs to
  no request (its own requests, ``ping`` included) arrives on the one pipe
  and must be read and answered; over HTTP the standalone GET stream is
  opened only when there is a callback to answer with.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from flowkit.mcp import Message

__all__ = ["Reply", "Transport"]


class Reply(Protocol):
    """The messages that answer one request, in order."""

    @property
    def session_id(self) -> str | None:
        """``Mcp-Session-Id`` the server gave (HTTP, 2025-11-25), else ``None``."""

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event read (resumable SSE streams), else ``None``."""

    @property
    def retry_ms(self) -> int | None:
        """The server's reconnection delay (SSE ``retry``), else ``None``."""

    async def next_message(self) -> Message | None:
        """The next message; ``None`` at the end.

        Raises:
            TransportError: the connection dropped (the caller may resume).
        """


class Transport(Protocol):
    """One MCP server, reached over one binding."""

    header_layer: bool
    closing_cancels: bool
    always_listen: bool

    def open(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        session: bool = False,
        request_id: int | None = None,
    ) -> AbstractAsyncContextManager[Reply | None]:
        """Send ``body``; yield its :class:`Reply`, or ``None`` if nothing answers it.

        Args:
            method: the HTTP method (``POST``, ``GET`` for the server's own
                stream or a resumption, ``DELETE`` to end a session).
            headers: the HTTP headers (ignored where there is no header layer).
            body: one JSON-RPC message.
            session: the request carries a session (a 404 means it expired).
            request_id: the id of the request in ``body``, if it is one: what
                routes its response on a shared channel.
        """

    async def aclose(self) -> None:
        """Release the connection (HTTP) or stop the server process (stdio)."""
