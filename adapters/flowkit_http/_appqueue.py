"""Each request's ASGI event queue under ``flowkit serve``: a flowkit channel.

hypercorn hands an app its request events (body chunks, the disconnect)
through a queue it opens per request in ``TaskGroup.spawn_app``: a trio
memory channel. trio's channel state allocates its 64-slot deque and its
two ordered dicts of waiting tasks up front, ~1 KiB for a queue that holds
one or two events in its life, and an open SSE stream keeps its request's
queue for as long as it is open (docs/benchmarks.md, "Where an idle
stream's bytes go"). A flowkit channel (:func:`flowkit.open_channel`) is one
small object until an event or a waiting task arrives, with the same
bound (``config.max_app_queue_size``) and the same semantics for hypercorn
(``send`` waits for room, ``receive`` is a full checkpoint).

The app still runs in hypercorn's own ``_handle`` (its error logging and
the final ``send(None)`` stay hypercorn's); only the queue differs. And
``before_app`` is awaited with each request's scope before its app starts:
the first request's turn in ``flowkit serve``'s line (``flowkit_http._pacing``),
taken where hypercorn has parsed its headers, in the connection's reader.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.trio.task_group import TaskGroup, _handle
from hypercorn.typing import AppWrapper, ASGIReceiveEvent, ASGISendEvent, Scope

from flowkit import FlowReceiveChannel, FlowSendChannel, open_channel

__all__ = ["AppTaskGroup"]


class AppTaskGroup(TaskGroup):
    """hypercorn's per-connection task group, its app queues flowkit channels."""

    def __init__(self, before_app: Callable[[Scope], Awaitable[None]] | None = None) -> None:
        super().__init__()
        self._before_app = before_app

    async def spawn_app(
        self,
        app: AppWrapper,
        config: Config,
        scope: Scope,
        send: Callable[[ASGISendEvent | None], Awaitable[None]],
    ) -> Callable[[ASGIReceiveEvent], Awaitable[None]]:
        if self._before_app is not None:
            await self._before_app(scope)
        put: FlowSendChannel[ASGIReceiveEvent]
        take: FlowReceiveChannel[ASGIReceiveEvent]
        put, take = open_channel(config.max_app_queue_size)
        nursery = self._nursery
        assert nursery is not None, "spawn_app outside the group's block"
        nursery.start_soon(
            _handle,
            app,
            config,
            scope,
            take.receive,
            send,
            trio.to_thread.run_sync,
            trio.from_thread.run,
        )
        return put.send
