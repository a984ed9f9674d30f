"""Run the official SDK client on asyncio in a worker thread.

The client is anyio-based and does run under trio, but its HTTP layer leaves
async generators for the garbage collector, which trio reports as
``ResourceWarning`` (errors under this suite's ``filterwarnings``). On its own
asyncio loop in a thread it runs cleanly, and the server under test keeps the
trio thread to itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import trio
from mcp import Client

T = TypeVar("T")


async def with_client(
    url: str, body: Callable[[Client], Awaitable[T]], *, mode: str = "legacy", **options: Any
) -> T:
    """``await body(client)`` with a client connected to ``url``.

    ``mode`` is the client's era negotiation: ``"legacy"`` (the initialize
    handshake, the default here), ``"auto"`` (probe ``server/discover`` first)
    or a modern protocol version.
    """

    async def main() -> T:
        async with Client(url, mode=mode, **options) as client:
            return await body(client)

    return await on_asyncio(main())


async def on_asyncio(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` in a worker thread (the module docstring says why).

    ``main`` may call back into the test's trio loop with ``trio.from_thread``.
    """
    return await trio.to_thread.run_sync(asyncio.run, main, abandon_on_cancel=True)
