"""``flat_map``: each item becomes a stream of its own, flattened into the output.

``fn(item)`` may return a sync iterable, an async iterable (an async
generator), or an awaitable of either (an ``async def`` returning a list).
The inner streams are consumed lazily, as downstream takes their values, so
one item that expands into a million values (or an endless stream) holds at
most one chunk of them at a time.

With ``max_concurrent=1`` (the default) the inner streams run one after the
other, in input order (Akka's ``flatMapConcat``). With more, up to that
many run at once in tasks of their own and their values interleave (Akka's
``flatMapMerge(breadth)``); the stage stops reading upstream while all are
busy, so in-flight inner streams never exceed the bound.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

import trio

from ._checks import check_count
from ._operator import CHUNK, Operator, _is_broken, receive_some
from ._tasks import aclose_shielded

__all__ = ["flat_map"]


class _FlatMap(Operator[Any, Any]):
    _kind = "flat_map"

    def __init__(self, fn: Callable[[Any], Any], max_concurrent: int, *, name: str | None) -> None:
        super().__init__(name=name)
        self._fn = fn
        self._max = check_count(max_concurrent, "max_concurrent")

    async def _run(
        self, receive: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[Any]
    ) -> None:
        if self._max == 1:
            async for item in receive:
                self._accepted(1)
                await self._expand(item, send)
            return
        permits = trio.Semaphore(self._max)
        async with trio.open_nursery() as nursery:
            while True:
                await permits.acquire()
                try:
                    # As many items as there are permits, no more.
                    items = await receive_some(receive, 1 + permits.value)
                except trio.EndOfChannel:
                    break
                for _ in items[1:]:
                    permits.acquire_nowait()
                self._accepted(len(items))
                for item in items:
                    nursery.start_soon(self._expand_released, item, send, permits, nursery)

    def _accepted(self, count: int) -> None:
        counters = self._counters
        counters.items_in += count
        counters.set_buffered(counters.items_in - counters.items_out)

    async def _expand_released(
        self,
        item: Any,
        send: trio.abc.SendChannel[Any],
        permits: trio.Semaphore,
        nursery: trio.Nursery,
    ) -> None:
        try:
            await self._expand(item, send)
        except trio.BrokenResourceError:
            if not _is_broken(send):
                raise
            nursery.cancel_scope.cancel()  # downstream left: stop every inner stream
            return
        permits.release()

    async def _expand(self, item: Any, send: trio.abc.SendChannel[Any]) -> None:
        """Send every value of ``fn(item)``'s stream, then count ``item`` as out."""
        counters = self._counters
        inner = self._fn(item)
        if inspect.isawaitable(inner):
            inner = await inner
        if isinstance(inner, AsyncIterable):
            iterator = aiter(inner)
            try:
                async for value in iterator:
                    await self._emit(send, (value,))
                    counters.emitted += 1
            finally:
                await aclose_shielded(iterator)
        elif isinstance(inner, Iterable):
            values = iter(inner)
            while chunk := list(itertools.islice(values, CHUNK)):
                await self._emit(send, chunk)
                counters.emitted += len(chunk)
        else:
            raise TypeError(
                f"{self.name}: fn returned {type(inner).__name__}, not an iterable or an "
                "async iterable"
            )
        counters.items_out += 1
        counters.set_buffered(counters.items_in - counters.items_out)


def flat_map(
    fn: Callable[[Any], Any], *, max_concurrent: int = 1, name: str | None = None
) -> Operator[Any, Any]:
    """Replace each item with the values of ``fn(item)``, flattened.

    ``fn`` returns an iterable, an async iterable, or (an ``async def``) an
    awaitable of either. The inner stream is read lazily, a chunk of a sync
    iterable or one value of an async one at a time, as downstream takes
    them: a slow consumer backpressures the inner stream, and an endless one
    is fine.

    Args:
        fn: maps an item to its stream of values.
        max_concurrent: how many inner streams may run at once (the bound on
            ``buffered``, in upstream items). 1: one after the other, output
            in input order. More: each in a task of its own, values
            interleaved as they come; the stage stops reading upstream while
            all are busy.
        name: the stage's label in its statistics, repr and error messages
            (default: the operator's kind, ``"flat_map"``).

    * error: an exception from ``fn`` or an inner stream cancels the other
      inner streams and propagates with its original type, never a group.
      Async inner streams are closed (``aclose``) on every path.
    * closed downstream: the inner streams stop and upstream sees
      ``BrokenResourceError``.

    Statistics: ``items_in``/``items_out`` count upstream items (an item is
    out once its inner stream has ended), ``emitted`` the values sent;
    ``buffered`` is the number of inner streams running.

    Raises:
        ValueError: ``max_concurrent`` is not an int >= 1.
    """
    return _FlatMap(fn, max_concurrent, name=name)
