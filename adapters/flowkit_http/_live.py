"""The streaming-native resource: an MCP resource whose contents are a pipeline's newest item.

A sensor, a price, a build status: state that changes continuously is a
stream, and what a client wants to read is its *current* value. A
:class:`LiveResource` runs a flowkit pipeline for as long as the server
serves and keeps only the newest item it produced:

* ``resources/read`` returns that item (through the same conversion as any
  resource: ``str`` text, ``bytes`` blob, other JSON values as JSON text).
  A read before the first item waits for it; a read of a resource that is
  not running is an error, never a hang.
* ``notifications/resources/updated`` is paced by
  :func:`flowkit.throttle_latest`: at most one per ``interval``, the first at
  once. Items that arrive meanwhile are conflated, not queued: the pacing
  stage keeps reading, so the pipeline is never slowed by it, and the
  subscriber that reads after the notification gets the newest item, however
  many came in between. A slow subscriber therefore costs no memory here:
  there is one value, whatever the pipeline's rate and however many
  subscribers there are.

The chain is ``source, *stages, map(store), throttle_latest(interval)``,
run with :func:`flowkit.open_pipeline`, and each item out of it is one
``ResourceSet.updated(uri)``; the ``map`` is fused into the task before it,
so the value read is the newest item that left the user's stages.

The pipeline runs in the serving app's long-lived nursery (``MCPApp``,
``mount``, ``flowkit serve``). A failure is logged with its traceback and
ends the pipeline; the last value stays readable. One pipeline runs per
resource at a time: a second app serving the same server waits, and takes
over when the first stops.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import attrs
import trio

import flowkit

from ._items import ToolPipeline

__all__ = ["LiveResource", "LiveResourceStatistics"]

logger = logging.getLogger("flowkit_http")

_UNSET: Any = object()


@attrs.frozen
class LiveResourceStatistics:
    """What a live resource has done since it was declared.

    Attributes:
        items: items that reached the resource (each replaced the value).
        updates: ``resources/updated`` notifications sent (``<= items``).
        running: its pipeline runs now.
    """

    items: int
    updates: int
    running: bool


class LiveResource:
    """A resource backed by a pipeline: its contents are the newest item.

    Declare it with :meth:`flowkit_http.MCPServer.live_resource`, which also
    registers the :class:`~flowkit.mcp.Resource` whose reader is
    :meth:`read`; the serving app runs :meth:`run`.

    Args:
        uri: the resource's URI.
        factory: called with no arguments each time the pipeline starts;
            returns its source (an async iterable, a receive channel, an
            iterable) or a :class:`~flowkit_http.ToolPipeline` ``(source,
            *stages)``.
        interval: the least time, in seconds, between two
            ``resources/updated`` notifications for this resource.

    Raises:
        ValueError: ``interval`` is not a finite number > 0.
    """

    def __init__(self, uri: str, factory: Callable[[], Any], *, interval: float) -> None:
        if not (isinstance(interval, int | float) and 0 < interval < math.inf):
            raise ValueError(f"interval must be a finite number of seconds > 0, got {interval!r}")
        self.uri = uri
        self.interval = float(interval)
        self._factory = factory
        self._value: Any = _UNSET
        self._first: trio.Event | None = None  # while running and still without a value
        self._running = False
        self._turn = trio.Lock()  # one pipeline at a time, whichever app runs it
        self._items = 0
        self._updates = 0

    def __repr__(self) -> str:
        return f"LiveResource({self.uri!r}, interval={self.interval:g})"

    def statistics(self) -> LiveResourceStatistics:
        """Items seen and notifications sent so far."""
        return LiveResourceStatistics(self._items, self._updates, self._running)

    async def read(self) -> Any:
        """The newest item; before the first one, wait for it.

        Raises:
            RuntimeError: the pipeline is not running and never produced an
                item, or ended without one (the client gets -32603).
        """
        if self._value is _UNSET and self._first is not None:
            await self._first.wait()
        if self._value is _UNSET:
            raise RuntimeError(
                f"live resource {self.uri!r} has no value: its pipeline is not running"
            )
        return self._value

    async def run(self, updated: Callable[[str], None]) -> None:
        """Run the pipeline until it ends or this is cancelled.

        Args:
            updated: called with the URI for each paced update
                (``ResourceSet.updated``, which tells the subscribers).

        A failure of the pipeline (or of ``factory``) is logged and ends the
        run: the server goes on, and the last value stays readable.
        """
        async with self._turn:
            self._running = True
            if self._value is _UNSET:
                self._first = trio.Event()
            try:
                produced = self._factory()
                if isinstance(produced, ToolPipeline):
                    source, stages = produced.source, produced.stages
                else:
                    source, stages = produced, ()
                async with flowkit.open_pipeline(
                    source,
                    *stages,
                    flowkit.map(self._store, name="live value"),
                    flowkit.throttle_latest(self.interval, name="live updates"),
                ) as updates:
                    async for _ in updates:
                        self._updates += 1
                        updated(self.uri)
            except Exception:
                logger.exception("live resource %s failed", self.uri)
            finally:
                self._running = False
                first, self._first = self._first, None
                if first is not None:
                    first.set()  # waiting readers get the error, not a hang

    def _store(self, item: Any) -> Any:
        self._value = item
        self._items += 1
        if self._first is not None:
            self._first.set()
            self._first = None
        return item
