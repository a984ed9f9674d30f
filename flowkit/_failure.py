"""Failure handling: ``recover`` (an upstream failure becomes items, then the end)
and ``try_map`` (a per-item error policy: raise, skip, stop, or dead-letter).

A failure upstream of a ``recover`` stage is *handed over* to it by the
pipeline runner: the failing task aborts its hop (so the stages between see
``StreamAborted`` behind every item that preceded the failure) but does not
raise into the pipeline's nursery; the ``recover`` stage decides. If the
error is one it recovers from, it sends the handler's items and ends
cleanly; otherwise it raises the original error, which fails the pipeline as
if no ``recover`` had been there.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, Literal, TypeAlias, TypeVar

import trio

from ._exceptions import StreamAborted
from ._operator import CHUNK, Operator, receive_some
from ._tasks import aclose_shielded

__all__ = ["recover", "try_map"]

T = TypeVar("T")

#: What ``try_map`` does with an item whose function raised.
OnError: TypeAlias = "Literal['raise', 'skip', 'stop'] | Callable[[Any, Exception], Any]"


class _Recover(Operator[Any, Any]):
    _kind = "recover"
    #: Read by the pipeline runner: failures upstream are handed over here.
    _takes_failures = True

    def __init__(
        self,
        handler: Callable[[BaseException], Iterable[Any] | AsyncIterable[Any] | None],
        on: type[BaseException] | tuple[type[BaseException], ...],
        *,
        name: str | None,
    ) -> None:
        super().__init__(name=name)
        self._handler = handler
        self._on = on

    async def _run(
        self, receive: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[Any]
    ) -> None:
        counters = self._counters
        while True:
            try:
                chunk = await receive_some(receive)
            except trio.EndOfChannel:
                return
            except StreamAborted as aborted:
                original = aborted.__cause__ or aborted
                if not isinstance(original, self._on):
                    raise original from original.__cause__
                await self._replace(original, send)
                return
            counters.items_in += len(chunk)
            counters.set_buffered(len(chunk))
            await self._emit(send, chunk)
            counters.items_out += len(chunk)
            counters.emitted += len(chunk)
            counters.set_buffered(0)

    async def _replace(self, error: BaseException, send: trio.abc.SendChannel[Any]) -> None:
        counters = self._counters
        items = self._handler(error)
        if items is None:
            return
        if isinstance(items, AsyncIterable):
            iterator = aiter(items)
            try:
                async for item in iterator:
                    await self._emit(send, (item,))
                    counters.injected += 1
                    counters.emitted += 1
            finally:
                await aclose_shielded(iterator)
            return
        values = iter(items)
        while chunk := list(itertools.islice(values, CHUNK)):
            await self._emit(send, chunk)
            counters.injected += len(chunk)
            counters.emitted += len(chunk)


def recover(
    handler: Callable[[BaseException], Iterable[Any] | AsyncIterable[Any] | None],
    *,
    on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    name: str | None = None,
) -> Operator[Any, Any]:
    """Turn a failure upstream into items of ``handler(error)``, then end cleanly.

    Akka's ``recover``: items pass through unchanged; when the source or
    any stage before this one fails with an error that is an instance of
    ``on``, every item that preceded the failure is delivered first, then
    the items of ``handler(error)`` (an iterable, an async iterable, or
    ``None`` for none), and the stream ends normally: the pipeline does not
    raise. A failure of another type propagates unchanged, as if this stage
    were not there; so does an error raised by ``handler``.

    Inside a pipeline the runner hands every failure upstream of a
    ``recover`` to it rather than failing the pipeline at once. Awaited
    directly on a flowkit channel, it sees the ``StreamAborted`` that ends
    the channel; over a plain trio memory channel a crash looks like a
    clean end (trio channels carry no errors), so there is nothing to
    recover.

    Statistics: recovered items count in ``injected`` and ``emitted``.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"recover"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Recover(handler, on, name=name)


class _Stop(Exception):
    """``try_map``'s ``"stop"`` policy ending the stream (never escapes)."""


class _TryMap(Operator[Any, Any]):
    _kind = "try_map"

    def __init__(
        self,
        fn: Callable[[Any], Any],
        on_error: OnError,
        errors: type[Exception] | tuple[type[Exception], ...],
        *,
        name: str | None,
    ) -> None:
        if not callable(on_error) and on_error not in ("raise", "skip", "stop"):
            raise ValueError(
                f"on_error must be 'raise', 'skip', 'stop' or a dead-letter callable, got {on_error!r}"
            )
        super().__init__(name=name)
        self._fn = fn
        self._async = inspect.iscoroutinefunction(fn)
        self._on_error = on_error
        self._errors = errors
        #: Items whose function raised, by what became of them.
        self.failed = 0

    async def _run(
        self, receive: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[Any]
    ) -> None:
        counters = self._counters
        fn = self._fn
        while True:
            try:
                chunk = await receive_some(receive)
            except trio.EndOfChannel:
                return
            counters.items_in += len(chunk)
            counters.set_buffered(len(chunk))
            out: list[Any] = []
            for index, item in enumerate(chunk):
                try:
                    value = fn(item)
                    if self._async:
                        value = await value
                except self._errors as error:
                    try:
                        await self._failed(item, error)
                    except _Stop:
                        # Deliver what preceded it; the rest of the chunk
                        # was taken from upstream but never processed.
                        counters.dropped += len(chunk) - index - 1
                        counters.set_buffered(len(out))
                        await self._send(send, out)
                        return
                    continue
                out.append(value)
            await self._send(send, out)

    async def _send(self, send: trio.abc.SendChannel[Any], out: list[Any]) -> None:
        counters = self._counters
        if out:
            await self._emit(send, out)
        counters.items_out += len(out)
        counters.emitted += len(out)
        counters.set_buffered(0)

    async def _failed(self, item: Any, error: Exception) -> None:
        """Apply the policy to ``item``: raise, or count it as dropped."""
        policy = self._on_error
        if policy == "raise":
            raise error
        self.failed += 1
        counters = self._counters
        counters.dropped += 1
        counters.set_buffered(counters.buffered - 1)
        if policy == "stop":
            raise _Stop
        if callable(policy):
            result = policy(item, error)
            if inspect.isawaitable(result):
                await result


def try_map(
    fn: Callable[[Any], Any] | Callable[[Any], Awaitable[Any]],
    *,
    on_error: OnError,
    errors: type[Exception] | tuple[type[Exception], ...] = Exception,
    name: str | None = None,
) -> Operator[Any, Any]:
    """``map`` with a per-item error policy for the errors ``fn`` raises.

    Akka's supervision strategies, per stage. When ``fn(item)`` raises an
    instance of ``errors``:

    * ``"raise"``: the stage fails with the error (what ``map`` does);
    * ``"skip"``: the item is dropped and the stream goes on (Akka's
      ``Resume``);
    * ``"stop"``: the item is dropped and the stream ends cleanly after the
      items before it; upstream sees ``BrokenResourceError``;
    * a callable ``dead_letter(item, error)`` (sync or async): the item and
      its error go to it, and the stream goes on. An exception from the
      dead-letter callable fails the stage.

    Other exceptions always propagate. ``fn`` may be a plain function or an
    ``async def`` (one item at a time). Not fusible: a policy may end the
    stream, which a fused stage cannot.

    Statistics: failed items count in ``dropped`` (the stage's ``failed``
    attribute counts them too), so conservation holds.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"try_map"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``on_error`` is none of the above.
    """
    return _TryMap(fn, on_error, errors, name=name)
