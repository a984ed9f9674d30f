"""``buffer(n)``: a bounded buffer that backpressures upstream.

Inside a pipeline a buffer costs no task at all: it becomes the capacity of
the channel between its neighbours, so ``buffer(64)`` is exactly "up to 64
items may wait here". Run on its own (``await buffer(8)(rx, tx)``) it pumps
through an internal channel of that size.
"""

from __future__ import annotations

from typing import Any, TypeVar

import trio

from ._channel import FlowReceiveChannel, FlowSendChannel, open_channel
from ._checks import check_count
from ._operator import Operator, receive_some
from ._stats import OperatorStatistics

__all__ = ["buffer"]

T = TypeVar("T")


class _Buffer(Operator[T, T]):
    _kind = "buffer"

    def __init__(self, max_items: int, *, name: str | None) -> None:
        check_count(max_items, "buffer size")
        super().__init__(name=name)
        self.max_items = max_items
        self._channel: FlowSendChannel[T] | None = None

    def _bind(self, channel: FlowSendChannel[T]) -> None:
        """Let the pipeline use ``channel`` (of our capacity) as this stage."""
        self._claim()
        self._channel = channel

    def statistics(self) -> OperatorStatistics:
        if self._channel is None:
            return super().statistics()
        s = self._channel.statistics()
        return OperatorStatistics(
            name=self.name,
            items_in=s.items_sent,
            items_out=s.items_received,
            emitted=s.items_received,
            dropped=0,
            buffered=s.current_buffer_used,
            buffered_peak=s.peak_buffer_used,
            send_blocked_seconds=s.send_blocked_seconds,
        )

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        inner_send: FlowSendChannel[T]
        inner_receive: FlowReceiveChannel[T]
        inner_send, inner_receive = open_channel(self.max_items)
        self._channel = inner_send
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._fill, receive, inner_send)
            try:
                await self._drain(inner_receive, send)
            except trio.BrokenResourceError:
                # Downstream is gone: stop filling, then return normally.
                nursery.cancel_scope.cancel()

    # The inner ends are closed synchronously (``close()``, not ``async
    # with``): an ``aclose`` checkpoint while an error is leaving would let
    # the sibling's resulting BrokenResourceError cancel this task, and the
    # Cancelled would replace the real error.
    async def _fill(self, receive: trio.abc.ReceiveChannel[T], inner: FlowSendChannel[T]) -> None:
        try:
            while True:
                try:
                    chunk = await receive_some(receive, self.max_items)
                except trio.EndOfChannel:
                    return
                await inner.send_all(chunk)
        finally:
            inner.close()

    async def _drain(self, inner: FlowReceiveChannel[T], send: trio.abc.SendChannel[T]) -> None:
        try:
            while True:
                try:
                    chunk = await inner.receive_some()
                except trio.EndOfChannel:
                    return
                await self._emit(send, chunk)
        finally:
            inner.close()


def buffer(max_items: int, *, name: str | None = None) -> Operator[Any, Any]:
    """A FIFO of at most ``max_items`` items between two stages.

    When full, upstream's ``send`` waits (backpressure); nothing is dropped.
    At end, every buffered item is delivered before the end. Statistics:
    ``buffered``/``buffered_peak`` (never above ``max_items``) and the time
    upstream spent blocked on the full buffer.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"buffer"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Buffer(max_items, name=name)
