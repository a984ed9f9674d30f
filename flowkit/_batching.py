"""Batching: ``batch`` (size-or-time) and ``adaptive_batch`` (size-while-busy).

Downstream costs are often per call rather than per item (a database
round trip, one write to a socket), so grouping items amortises them. The two
operators answer "when is a batch ready?" differently:

* :func:`batch` emits when the batch is full or ``max_delay`` seconds after
  its first item arrived, whatever downstream is doing. Predictable batch
  shapes, bounded latency.
* :func:`adaptive_batch` emits as soon as downstream can take something and
  grows batches only while it cannot (Akka's ``batch``): no latency added
  for a fast consumer, large batches for a slow one.

Both bound what they hold in items (``max_size``), optionally also in
declared weight (``weight``/``max_weight``), and never emit an empty batch.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import trio

from ._checks import check_count
from ._handoff import _Handoff
from ._operator import CHUNK, Operator, receive_until

__all__ = ["adaptive_batch", "batch"]

T = TypeVar("T")


class _Limits(Generic[T]):
    """A batch's caps: ``max_size`` items and, optionally, ``max_weight``."""

    __slots__ = ("max_size", "max_weight", "weight")

    def __init__(
        self, max_size: int, weight: Callable[[T], float] | None, max_weight: float | None
    ) -> None:
        check_count(max_size, "max_size")
        if (weight is None) != (max_weight is None):
            raise ValueError("weight and max_weight go together: pass both or neither")
        if max_weight is not None and not max_weight > 0:
            raise ValueError(f"max_weight must be > 0, got {max_weight!r}")
        self.max_size = max_size
        self.weight = weight
        self.max_weight = max_weight

    def weigh(self, item: T) -> float:
        return 0.0 if self.weight is None else self.weight(item)

    def fits(self, count: int, total: float, weight: float) -> bool:
        """Whether an item of ``weight`` may join a batch of ``count``/``total``.

        An item heavier than ``max_weight`` on its own still forms a batch
        of one: refusing it would stall the stream forever.
        """
        if count == 0:
            return True
        if count >= self.max_size:
            return False
        return self.max_weight is None or total + weight <= self.max_weight

    def full(self, count: int, total: float) -> bool:
        if count >= self.max_size:
            return True
        return self.max_weight is not None and total >= self.max_weight


class _Batch(Operator[T, list[T]]):
    _kind = "batch"

    def __init__(self, limits: _Limits[T], max_delay: float | None, *, name: str | None) -> None:
        if max_delay is not None and not max_delay > 0:
            raise ValueError(f"max_delay must be > 0 seconds or None, got {max_delay!r}")
        super().__init__(name=name)
        self._limits = limits
        self._max_delay = max_delay

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[list[T]]
    ) -> None:
        limits = self._limits
        counters = self._counters
        batch: list[T] = []
        total = 0.0
        deadline = math.inf  # when the current batch is due; inf while empty
        while True:
            # Cancel-atomic receive: if the window closes while waiting, the
            # receive took nothing, so no item is lost to the timer.
            try:
                chunk = await receive_until(receive, deadline, limits.max_size - len(batch)) or []
            except trio.EndOfChannel:
                if batch:
                    await self._send_batch(send, batch)
                return
            now = trio.current_time()
            counters.items_in += len(chunk)
            counters.set_buffered(counters.buffered + len(chunk))
            if batch and now >= deadline:
                # Due: items that arrived at or after the deadline (or were
                # ready when it passed) start the next batch instead.
                await self._send_batch(send, batch)
                batch, total, deadline = [], 0.0, math.inf
            for item in chunk:
                weight = limits.weigh(item)
                if not limits.fits(len(batch), total, weight):
                    await self._send_batch(send, batch)
                    batch, total, deadline = [], 0.0, math.inf
                if not batch and self._max_delay is not None:
                    deadline = now + self._max_delay  # counted from arrival
                batch.append(item)
                total += weight
                if limits.full(len(batch), total):
                    await self._send_batch(send, batch)
                    batch, total, deadline = [], 0.0, math.inf

    async def _send_batch(self, send: trio.abc.SendChannel[list[T]], batch: list[T]) -> None:
        await self._emit(send, (batch,))
        counters = self._counters
        size = len(batch)
        counters.items_out += size
        counters.emitted += 1
        counters.batch_sizes[size] += 1
        counters.set_buffered(counters.buffered - size)


class _AdaptiveBatch(_Handoff[T, list[T]]):
    """The offered batch keeps growing while downstream has not taken it."""

    _kind = "adaptive_batch"

    def __init__(self, limits: _Limits[T], *, name: str | None) -> None:
        super().__init__(name=name)
        self._limits = limits
        self._batch: list[T] = []
        self._total = 0.0
        # Items received that do not fit the current batch by weight: they
        # start the next one. While any wait here, upstream is backpressured.
        self._carry: deque[tuple[T, float]] = deque()

    def _held(self) -> int:
        return len(self._batch) + len(self._carry)

    def _room(self) -> int:
        if self._carry or self._limits.full(len(self._batch), self._total):
            return 0
        return min(CHUNK, self._limits.max_size - len(self._batch))

    def _holding(self) -> bool:
        return bool(self._batch)

    def _reclaim_for(self, chunk: list[T]) -> bool:
        return bool(self._batch)  # grow the batch downstream has not taken yet

    def _admit(self, chunk: list[T]) -> None:
        limits = self._limits
        carry = self._carry
        for item in chunk:
            weight = limits.weigh(item)
            if carry or not limits.fits(len(self._batch), self._total, weight):
                carry.append((item, weight))
            else:
                self._batch.append(item)
                self._total += weight
        self._counters.items_in += len(chunk)
        self._counters.set_buffered(self._held())

    def _values(self, chunked: bool) -> Sequence[list[T]]:
        return (self._batch,)

    def _delivered(self, count: int) -> None:
        counters = self._counters
        size = len(self._batch)
        counters.items_out += size
        counters.emitted += 1
        counters.batch_sizes[size] += 1
        self._batch = []
        self._total = 0.0
        carry = self._carry
        while carry and self._limits.fits(len(self._batch), self._total, carry[0][1]):
            item, weight = carry.popleft()
            self._batch.append(item)
            self._total += weight
        counters.set_buffered(self._held())


def batch(
    max_size: int,
    max_delay: float | None = None,
    *,
    weight: Callable[[T], float] | None = None,
    max_weight: float | None = None,
    name: str | None = None,
) -> Operator[Any, list[Any]]:
    """Group items into lists of up to ``max_size``, or whatever came in ``max_delay``.

    A batch is emitted when it holds ``max_size`` items, when its declared
    weight reaches ``max_weight`` (an item that would push it over starts
    the next batch; an item heavier than ``max_weight`` travels alone), or
    ``max_delay`` seconds after its *first* item arrived, whichever comes
    first. Batches are never empty and keep the input order. At the end
    the partial batch is flushed, then the end; an upstream crash
    (``StreamAborted``) propagates and the partial batch is not emitted as
    if the stream had ended.

    While a batch is being sent, nothing is received: a slow downstream
    backpressures upstream, and the operator holds at most ``max_size``
    items. The delay is measured on trio's clock (``move_on_at``), so it is
    exact under ``trio.testing.MockClock``; the timed receive relies on
    receives being cancel-atomic (flowkit and trio memory channels are), so
    a window closing mid-wait never loses an item.

    Args:
        max_size: items per batch at most (>= 1).
        max_delay: seconds from a batch's first item to its emission at
            most; ``None`` for size-only batching.
        weight: the declared weight of an item (for example its byte size);
            must be given together with ``max_weight``.
        max_weight: total weight per batch at most.
        name: the stage's label in its statistics, repr and error messages
            (default: the operator's kind, ``"batch"``).

    Statistics: ``batch_sizes`` is the histogram of emitted batch sizes;
    ``emitted`` counts batches, ``items_out`` the items in them.
    """
    return _Batch(_Limits(max_size, weight, max_weight), max_delay, name=name)


def adaptive_batch(
    max_size: int,
    *,
    weight: Callable[[T], float] | None = None,
    max_weight: float | None = None,
    name: str | None = None,
) -> Operator[Any, list[Any]]:
    """Batch only while downstream is busy (Akka's ``batch``).

    When downstream is waiting, an item goes out at once as a batch of one:
    no latency is ever added. While downstream is busy, arriving items join
    the batch waiting for it, up to ``max_size`` items (and ``max_weight``);
    at the cap upstream is backpressured, nothing is dropped. So batch
    sizes adapt to the consumer's speed: 1 for a fast one, ``max_size`` for
    a slow one. The batch being offered to a blocked downstream is the one
    that grows (its send is cancelled and redone, relying on cancel-atomic
    sends), so the operator holds at most ``max_size`` items in all. At the
    end the last batch is delivered; an upstream crash propagates.

    Args:
        max_size: items per batch at most (>= 1).
        weight: the declared weight of an item; with ``max_weight``.
        max_weight: total weight per batch at most (an item heavier than
            that travels alone).
        name: the stage's label in its statistics, repr and error messages
            (default: the operator's kind, ``"adaptive_batch"``).

    Statistics: ``batch_sizes`` shows how much batching the consumer's pace
    caused; ``send_blocked_seconds`` how long batches waited for it.
    """
    return _AdaptiveBatch(_Limits(max_size, weight, max_weight), name=name)
