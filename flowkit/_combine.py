"""Combining streams into tuples: ``zip`` (lockstep), ``combine_latest`` and ``zip_latest``.

Like ``merge``, each is a one-in-one-out operator whose extra inputs are
given to the factory: ``open_pipeline(prices, flowkit.zip(volumes))`` pairs
the pipeline's stream with ``volumes``. The upstream is always the first
element of each tuple. Extra inputs are receive channels (owned and closed
by the stage) or async iterables (closed with ``aclose`` when it stops).

* ``zip`` takes one item from every input per tuple (Akka's ``zip``,
  Python's ``zip``): lossless while all inputs last, ends with the first
  input that ends.
* ``combine_latest`` emits a tuple of the latest value of every input each
  time any input delivers one, once every input has delivered one (Rx's
  ``combineLatest``); it backpressures every input.
* ``zip_latest`` is the same tuple of latest values, but conflated (Akka's
  ``zipLatest``): inputs are read as fast as they come, and a busy consumer
  gets one tuple of the newest values when it is ready, not one per update.
"""

from __future__ import annotations

import builtins
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any, TypeAlias

import trio

from ._operator import CHUNK, Operator, _is_broken, receive_some
from ._tasks import aclose_shielded

__all__ = ["combine_latest", "zip", "zip_latest"]

#: What the combining operators read from besides their upstream.
Input: TypeAlias = "trio.abc.ReceiveChannel[Any] | AsyncIterable[Any]"

_UNSET: Any = object()


class _Reader:
    """One input, read a chunk at a time; ``EndOfChannel`` at its end."""

    def __init__(self, source: Input) -> None:
        self._channel: trio.abc.ReceiveChannel[Any] | None = None
        self._iterator: AsyncIterator[Any] | None = None
        if isinstance(source, trio.abc.ReceiveChannel):
            self._channel = source
        else:
            self._iterator = aiter(source)

    async def chunk(self, max_items: int = CHUNK) -> list[Any]:
        if self._channel is not None:
            return await receive_some(self._channel, max_items)
        assert self._iterator is not None
        try:
            return [await anext(self._iterator)]
        except StopAsyncIteration:
            raise trio.EndOfChannel from None

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.aclose()
        else:
            await aclose_shielded(self._iterator)


class _Combining(Operator[Any, tuple[Any, ...]]):
    """Owns the extra inputs: every one is closed on every path."""

    def __init__(self, others: Sequence[Input], *, name: str | None) -> None:
        if not others:
            raise ValueError(f"{self._kind}() needs at least one other input to combine with")
        super().__init__(name=name)
        self._others = tuple(others)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[tuple[Any, ...]]
    ) -> None:
        readers = [_Reader(receive), *(_Reader(source) for source in self._others)]
        try:
            await self._combine(readers, send)
        finally:
            with trio.CancelScope(shield=True):
                for reader in readers[1:]:
                    await reader.close()

    async def _combine(
        self, readers: list[_Reader], send: trio.abc.SendChannel[tuple[Any, ...]]
    ) -> None:
        raise NotImplementedError


class _Zip(_Combining):
    _kind = "zip"

    async def _combine(
        self, readers: list[_Reader], send: trio.abc.SendChannel[tuple[Any, ...]]
    ) -> None:
        counters = self._counters
        held: list[deque[Any]] = [deque() for _ in readers]
        while True:
            for reader, queue in builtins.zip(readers, held, strict=True):
                if not queue:
                    try:
                        chunk = await reader.chunk()
                    except trio.EndOfChannel:
                        # Python's zip: the first input to end ends it; what
                        # the others hold can never be paired.
                        leftover = sum(len(q) for q in held)
                        counters.dropped += leftover
                        counters.set_buffered(0)
                        return
                    queue.extend(chunk)
                    counters.items_in += len(chunk)
                    counters.set_buffered(counters.buffered + len(chunk))
            count = min(len(queue) for queue in held)
            tuples = [tuple(queue.popleft() for queue in held) for _ in range(count)]
            await self._emit(send, tuples)
            width = len(readers)
            counters.items_out += count * width
            counters.emitted += count
            counters.set_buffered(counters.buffered - count * width)


class _Latest(_Combining):
    """Shared by ``combine_latest`` and ``zip_latest``: the latest value per input.

    An input's latest value is *fresh* until a tuple carries it: fresh
    values are the stage's ``buffered`` items; one replaced while still
    fresh counts as ``dropped``; the fresh values a tuple carries count as
    ``items_out``.
    """

    def _start(self, width: int) -> None:
        self._latest: list[Any] = [_UNSET] * width
        self._fresh = [False] * width
        self._missing = width  # inputs with no value yet

    def _take(self, index: int, item: Any) -> None:
        counters = self._counters
        counters.items_in += 1
        if self._latest[index] is _UNSET:
            self._missing -= 1
        elif self._fresh[index]:
            counters.dropped += 1
        self._latest[index] = item
        if not self._fresh[index]:
            self._fresh[index] = True
            counters.set_buffered(counters.buffered + 1)

    def _snapshot(self) -> tuple[tuple[Any, ...], int]:
        """The tuple of latest values, and how many fresh values it carries."""
        carried = self._fresh.count(True)
        self._fresh = [False] * len(self._fresh)
        return tuple(self._latest), carried

    async def _send_tuples(
        self,
        send: trio.abc.SendChannel[tuple[Any, ...]],
        tuples: list[tuple[Any, ...]],
        carried: int,
    ) -> None:
        counters = self._counters
        await self._emit(send, tuples)
        counters.items_out += carried
        counters.emitted += len(tuples)
        counters.set_buffered(self._fresh.count(True))

    def _abandon(self) -> None:
        """The stage ends with values no tuple will carry: they are dropped."""
        counters = self._counters
        counters.dropped += self._fresh.count(True)
        self._fresh = [False] * len(self._fresh)
        counters.set_buffered(0)


class _CombineLatest(_Latest):
    _kind = "combine_latest"

    async def _combine(
        self, readers: list[_Reader], send: trio.abc.SendChannel[tuple[Any, ...]]
    ) -> None:
        self._start(len(readers))
        async with trio.open_nursery() as nursery:
            for index, reader in enumerate(readers):
                nursery.start_soon(self._read, index, reader, send, nursery.cancel_scope)
        self._abandon()

    async def _read(
        self,
        index: int,
        reader: _Reader,
        send: trio.abc.SendChannel[tuple[Any, ...]],
        scope: trio.CancelScope,
    ) -> None:
        try:
            while True:
                try:
                    chunk = await reader.chunk()
                except trio.EndOfChannel:
                    if self._latest[index] is _UNSET:
                        scope.cancel()  # it can never take part in a tuple: end now
                    return
                tuples: list[tuple[Any, ...]] = []
                carried = 0
                for item in chunk:
                    self._take(index, item)
                    if not self._missing:
                        value, count = self._snapshot()
                        tuples.append(value)
                        carried += count
                if tuples:
                    await self._send_tuples(send, tuples, carried)
        except trio.BrokenResourceError:
            if not _is_broken(send):
                raise
            scope.cancel()  # downstream left: stop reading every input


class _ZipLatest(_Latest):
    _kind = "zip_latest"

    async def _combine(
        self, readers: list[_Reader], send: trio.abc.SendChannel[tuple[Any, ...]]
    ) -> None:
        self._start(len(readers))
        changed = trio.Event()
        live = len(readers)

        async def read(index: int, reader: _Reader) -> None:
            nonlocal live
            while True:
                try:
                    chunk = await reader.chunk()
                except trio.EndOfChannel:
                    # An input that never delivered ends it: no tuple can be made.
                    live = 0 if self._latest[index] is _UNSET else live - 1
                    changed.set()
                    return
                for item in chunk:
                    self._take(index, item)
                if not self._missing:
                    changed.set()

        async with trio.open_nursery() as nursery:
            for index, reader in enumerate(readers):
                nursery.start_soon(read, index, reader)
            try:
                while True:
                    if not self._missing and True in self._fresh:
                        value, carried = self._snapshot()
                        await self._send_tuples(send, [value], carried)
                        continue  # values may have changed during the send
                    if not live:
                        break
                    await changed.wait()
                    changed = trio.Event()
            except trio.BrokenResourceError:
                if not _is_broken(send):
                    raise
            nursery.cancel_scope.cancel()
        self._abandon()


def zip(*others: Input, name: str | None = None) -> Operator[Any, tuple[Any, ...]]:
    """Pair the upstream with ``others`` in lockstep: one item of each per tuple.

    ``(upstream item, other item, ...)``, in order, as Python's ``zip``
    and Akka's ``zip``. The stream ends as soon as any input ends, after the
    tuples it completed; items the other inputs hold then can never be
    paired, and count as ``dropped``. Each input is read a chunk at a time,
    so at most one chunk (256 items) per input is held.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"zip"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: no ``others``.
    """
    return _Zip(others, name=name)


def combine_latest(*others: Input, name: str | None = None) -> Operator[Any, tuple[Any, ...]]:
    """Emit the latest value of every input each time any input delivers one.

    Rx's ``combineLatest``: nothing until every input has delivered a
    value; then one tuple per arriving item. Every input is backpressured by
    a slow consumer. Ends when every input has ended, or at once when an
    input ends without ever delivering a value (no tuple could be made).
    Values replaced before the first tuple count as ``dropped``.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"combine_latest"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: no ``others``.
    """
    return _CombineLatest(others, name=name)


def zip_latest(*others: Input, name: str | None = None) -> Operator[Any, tuple[Any, ...]]:
    """A tuple of the newest value of every input, conflated for a busy consumer.

    Akka's ``zipLatest``: like :func:`combine_latest`, but the inputs are
    read as fast as they come while the consumer is busy, and when it is
    ready it gets *one* tuple of the newest values; values replaced in
    between count as ``dropped``. Nothing is emitted until every input has
    delivered a value. Ends when every input has ended (or one ends without
    ever delivering a value), after a last tuple if anything changed.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"zip_latest"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: no ``others``.
    """
    return _ZipLatest(others, name=name)
