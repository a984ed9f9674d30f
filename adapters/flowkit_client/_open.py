"""Opening a client: over Streamable HTTP (:func:`open_client`) or stdio (:func:`open_stdio_client`).

Both give the same :class:`~flowkit_client.Client`, negotiated the same way
(``server/discover``, else the 2025-11-25 handshake) and closed the same way
at the end of the block: an HTTP client ends its session with ``DELETE``; a
stdio client closes the server's stdin and stops the process (see
``flowkit_client._stdio``).
"""

from __future__ import annotations

import math
import os
import random
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import IO, Literal, TypeAlias

import trio

from flowkit import ungrouped

from ._client import Client, Handler
from ._exceptions import ConnectError, ConnectTimeout, TransportError
from ._policy import RetryPolicy, Timeouts
from ._stdio import MAX_LINE, StdioTransport
from ._transport import HTTPTransport
from ._wire import Transport

__all__ = ["Connect", "open_client", "open_stdio_client"]

Connect: TypeAlias = Callable[..., AbstractAsyncContextManager[Client]]
"""``open_client`` or ``open_stdio_client`` with the server bound: callbacks in, a client out."""

Era: TypeAlias = Literal["auto", "2026-07-28", "2025-11-25"]


def _handlers(
    on_elicitation: Handler | None, on_sampling: Handler | None, on_roots: Handler | None
) -> dict[str, Handler]:
    return {
        method: handler
        for method, handler in (
            ("elicitation/create", on_elicitation),
            ("sampling/createMessage", on_sampling),
            ("roots/list", on_roots),
        )
        if handler is not None
    }


@asynccontextmanager
async def _connected(
    transport: Transport,
    start: Callable[[trio.Nursery], Awaitable[None]] | None,
    era: Era,
    within: float | None = None,
    **options: object,
) -> AsyncIterator[Client]:
    """A negotiated client on ``transport`` for the block; closed on every path.

    ``start`` launches the transport's tasks; ``within`` bounds start-up and
    negotiation (:class:`ConnectTimeout`).
    """
    with ungrouped():
        async with trio.open_nursery() as nursery:
            client = Client(transport, nursery, **options)  # type: ignore[arg-type]
            try:
                with trio.move_on_after(math.inf if within is None else within) as deadline:
                    if start is not None:
                        await start(nursery)
                    await client._negotiate(era)
                if deadline.cancelled_caught:
                    raise ConnectTimeout(f"the server did not finish negotiating within {within} s")
                yield client
            finally:
                if hasattr(client, "policy"):
                    await client._aclose()
                else:
                    with trio.CancelScope(shield=True):
                        await transport.aclose()
                nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_client(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeouts: Timeouts | None = None,
    retry: RetryPolicy | None = None,
    era: Era = "auto",
    log_level: str | None = "info",
    on_elicitation: Handler | None = None,
    on_sampling: Handler | None = None,
    on_roots: Handler | None = None,
    client_info: Mapping[str, str] | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Client]:
    """Connect to an MCP endpoint and negotiate; disconnect (DELETE the session) at the end.

    Args:
        url: the endpoint, e.g. ``http://127.0.0.1:8000/mcp``.
        headers: sent with every request, e.g. ``{"Authorization": "Bearer ..."}``.
        timeouts: connect/read/write deadlines (default :class:`Timeouts`).
        retry: how a dropped 2025-11-25 stream is resumed (default :class:`RetryPolicy`).
        era: ``"auto"`` (``server/discover``, else the handshake) or one revision.
        log_level: the least severe log level to receive (logs carry
            partial results): ``logging/setLevel`` after the handshake, the
            ``logLevel`` of every request's ``_meta`` in 2026-07-28. ``None``
            asks for none (a 2025-11-25 server then applies its default).
        on_elicitation: answers ``elicitation/create`` (params in, result out,
            e.g. ``{"action": "accept", "content": {...}}``).
        on_sampling: answers ``sampling/createMessage``.
        on_roots: answers ``roots/list`` (``{"roots": [...]}``).
        client_info: ``clientInfo`` (``name``, ``version``).
        rng: the random source of the backoff jitter (seed it in tests).
    """
    transport = HTTPTransport(url, headers or {}, timeouts or Timeouts())
    async with _connected(
        transport,
        None,
        era,
        retry=retry or RetryPolicy(),
        log_level=log_level,
        handlers=_handlers(on_elicitation, on_sampling, on_roots),
        client_info=client_info or {"name": "flowkit-client", "version": "0.1.0"},
        rng=rng or random.Random(),
    ) as client:
        yield client


@asynccontextmanager
async def open_stdio_client(
    command: Sequence[str] | str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stderr: int | IO[bytes] | None = None,
    start_timeout: float | None = 30.0,
    era: Era = "auto",
    log_level: str | None = "info",
    on_elicitation: Handler | None = None,
    on_sampling: Handler | None = None,
    on_roots: Handler | None = None,
    client_info: Mapping[str, str] | None = None,
    max_line: int = MAX_LINE,
) -> AsyncIterator[Client]:
    """Launch an MCP server as a subprocess and speak to it over its stdin and stdout.

    ::

        async with open_stdio_client(["flowkit", "serve", "--stdio", "--demo"]) as client:
            result = await client.call("ticker", {"count": 3})

    The client is the one :func:`open_client` gives, with stdio's rules: a
    call is cancelled with ``notifications/cancelled`` in both eras (nothing
    closes), and the 2026-07-28 server sends no requests of its own (input
    comes through ``input_required`` results, answered by the same
    callbacks). Logs, and so partial results, carry no request id on stdio:
    each is given to every call in flight (to *the* call, with one at a time).

    Args:
        command: the server's program and arguments (a string is split as a
            shell would, without running one).
        env: variables added to this process's environment for the server.
        cwd: the server's working directory.
        stderr: where the server's stderr goes (default: this process's).
        start_timeout: seconds from launch to the end of negotiation
            (:class:`ConnectTimeout`); ``None`` for no limit.
        era: ``"auto"`` (``server/discover``, else the handshake) or one revision.
        log_level: as for :func:`open_client`.
        on_elicitation: answers ``elicitation/create``.
        on_sampling: answers ``sampling/createMessage``.
        on_roots: answers ``roots/list``.
        client_info: ``clientInfo`` (``name``, ``version``).
        max_line: the longest line accepted from the server, in bytes
            (longer fails the connection with :class:`ProtocolError`).

    Raises:
        ConnectError: the command cannot be run, or the server exited before
            negotiation ended.
    """
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise ConnectError("the server command is empty")
    transport = StdioTransport(argv, env=env, cwd=cwd, stderr=stderr, max_line=max_line)
    shown = shlex.join(argv)

    async def start(nursery: trio.Nursery) -> None:
        await transport.start(nursery)

    negotiated = False
    try:
        async with _connected(
            transport,
            start,
            era,
            start_timeout,
            retry=RetryPolicy(),
            log_level=log_level,
            handlers=_handlers(on_elicitation, on_sampling, on_roots),
            client_info=client_info or {"name": "flowkit-client", "version": "0.1.0"},
            rng=random.Random(),
        ) as client:
            negotiated = True
            yield client
    except TransportError as exc:
        if negotiated or isinstance(exc, ConnectError):
            raise
        why = transport.ended_because()
        raise ConnectError(f"{shown}: {why or exc} before negotiation ended") from exc
