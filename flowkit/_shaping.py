"""Time shaping: ``debounce``, ``sample``, ``throttle_latest`` (lossy) and ``delay``.

The first three keep at most one item, the newest, and decide *when* it
goes out: after upstream has been quiet (``debounce``), at fixed ticks
(``sample``), or at most once per interval, the first one at once
(``throttle_latest``). An item replaced by a newer one before it went out
counts as ``dropped``. ``delay`` loses nothing: it shifts every item later
by a fixed time, holding a bounded number of them meanwhile.

Every timed wait is a cancel scope around a receive. Flowkit channels and
trio memory channels are cancel-atomic, so a receive cut short by a timer
took nothing: no item is lost to a timer, only to a newer item. Time comes
from trio's clock only, so ``MockClock(autojump_threshold=0)`` makes every
one of them deterministic and instant in tests.

While a send waits for a slow consumer, these stages do not read upstream
(backpressure): the item being sent is no longer replaceable.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import trio

from ._checks import check_count
from ._operator import Operator, receive_some, receive_until
from ._stats import _Counters
from ._timing import _positive

__all__ = ["debounce", "delay", "sample", "throttle_latest"]

T = TypeVar("T")

_EMPTY: Any = object()


class _Newest(Generic[T]):
    """The one item a lossy timed stage holds, with the counting done once."""

    __slots__ = ("_counters", "item")

    def __init__(self, counters: _Counters) -> None:
        self._counters = counters
        self.item: T = _EMPTY

    @property
    def held(self) -> bool:
        return self.item is not _EMPTY

    def offer(self, chunk: list[T]) -> None:
        """Keep the newest of ``chunk``; everything it replaces is dropped."""
        counters = self._counters
        counters.items_in += len(chunk)
        counters.dropped += len(chunk) - 1 + self.held
        self.item = chunk[-1]
        counters.set_buffered(1)

    async def send(
        self,
        emit: Callable[[trio.abc.SendChannel[T], Sequence[T]], Awaitable[None]],
        send: trio.abc.SendChannel[T],
    ) -> None:
        """Send the held item through ``emit`` (the stage's counted send), then count it out."""
        item, self.item = self.item, _EMPTY
        await emit(send, (item,))
        counters = self._counters
        counters.items_out += 1
        counters.emitted += 1
        counters.set_buffered(0)


class _Debounce(Operator[T, T]):
    _kind = "debounce"

    def __init__(self, seconds: float, *, name: str | None) -> None:
        super().__init__(name=name)
        self._seconds = _positive("seconds", seconds)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        newest: _Newest[T] = _Newest(self._counters)
        deadline = math.inf
        while True:
            try:
                chunk = await receive_until(receive, deadline)
            except trio.EndOfChannel:
                break
            if chunk is not None:
                newest.offer(chunk)
                deadline = trio.current_time() + self._seconds  # quiet restarts
                continue
            await newest.send(self._emit, send)  # quiet for long enough
            deadline = math.inf
        if newest.held:  # the end: nothing newer can come
            await newest.send(self._emit, send)


class _Sample(Operator[T, T]):
    _kind = "sample"

    def __init__(self, interval: float, *, name: str | None) -> None:
        super().__init__(name=name)
        self._interval = _positive("interval", interval)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        interval = self._interval
        newest: _Newest[T] = _Newest(self._counters)
        start = trio.current_time()
        tick = start + interval
        ended = False
        while not ended or newest.held:
            if ended:
                await trio.sleep_until(tick)
            else:
                try:
                    chunk = await receive_until(receive, tick)
                except trio.EndOfChannel:
                    ended = True
                    continue
                if chunk is not None:
                    newest.offer(chunk)
                    continue
            if newest.held:
                await newest.send(self._emit, send)
            # The next tick on the grid after now: ticks missed while a send
            # was blocked are skipped, never caught up in a burst.
            now = trio.current_time()
            ticks = math.floor((now - start) / interval) + 1
            while start + ticks * interval <= now:  # float rounding at a tick
                ticks += 1
            tick = start + ticks * interval


class _ThrottleLatest(Operator[T, T]):
    _kind = "throttle_latest"

    def __init__(self, interval: float, *, name: str | None) -> None:
        super().__init__(name=name)
        self._interval = _positive("interval", interval)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        newest: _Newest[T] = _Newest(self._counters)
        gate = -math.inf  # no send may start before this
        ended = False
        while True:
            if newest.held:
                if ended:
                    await trio.sleep_until(gate)
                else:
                    try:
                        chunk = await receive_until(receive, gate)
                    except trio.EndOfChannel:
                        ended = True
                        continue
                    if chunk is not None:
                        newest.offer(chunk)  # the gate is shut: keep the newest
                        continue
                gate = await self._send_newest(send, newest)
                continue
            if ended:
                return
            try:
                chunk = await receive_some(receive)
            except trio.EndOfChannel:
                return
            if trio.current_time() >= gate:
                # The gate is open: the first goes out at once, and the
                # newest of the rest waits for the next turn.
                newest.offer(chunk[:1])
                gate = await self._send_newest(send, newest)
                del chunk[:1]
            if chunk:
                newest.offer(chunk)

    async def _send_newest(self, send: trio.abc.SendChannel[T], newest: _Newest[T]) -> float:
        """Send the held item; return when the next send may start."""
        started = trio.current_time()
        await newest.send(self._emit, send)
        return started + self._interval


class _Delay(Operator[T, T]):
    _kind = "delay"

    def __init__(self, seconds: float, max_items: int, *, name: str | None) -> None:
        super().__init__(name=name)
        self._seconds = _positive("seconds", seconds)
        self._max = check_count(max_items, "max_items")

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        counters = self._counters
        seconds = self._seconds
        line: deque[tuple[float, T]] = deque()  # (due, item), oldest first
        ended = False
        while not ended or line:
            now = trio.current_time()
            due: list[T] = []
            while line and line[0][0] <= now:
                due.append(line.popleft()[1])
            if due:
                await self._emit(send, due)
                counters.items_out += len(due)
                counters.emitted += len(due)
                counters.set_buffered(len(line))
                continue
            deadline = line[0][0] if line else math.inf
            if ended or len(line) >= self._max:
                await trio.sleep_until(deadline)  # full: upstream waits
                continue
            try:
                chunk = await receive_until(receive, deadline, self._max - len(line))
            except trio.EndOfChannel:
                ended = True
                continue
            if chunk is not None:
                at = trio.current_time() + seconds
                line.extend((at, item) for item in chunk)
                counters.items_in += len(chunk)
                counters.set_buffered(len(line))


def debounce(seconds: float, *, name: str | None = None) -> Operator[Any, Any]:
    """Emit the newest item once upstream has been quiet for ``seconds``.

    Rx's ``debounce``: each arrival restarts the quiet clock, and replaces
    the held item (the replaced one counts as ``dropped``). At the end the
    held item, if any, goes out at once. A stream that never pauses for
    ``seconds`` emits nothing until it ends; use :func:`sample` or
    :func:`throttle_latest` when a steady rate matters.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"debounce"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``seconds`` is not a finite number > 0.
    """
    return _Debounce(seconds, name=name)


def sample(interval: float, *, name: str | None = None) -> Operator[Any, Any]:
    """Emit the newest item at every tick of ``interval``, if one came since the last.

    Rx's ``sample``. Ticks fall on a fixed grid from the stage's start
    (no drift); a tick with nothing new emits nothing; items replaced
    before their tick count as ``dropped``. At the end the held item, if
    any, goes out at the next tick, then the stream ends.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"sample"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``interval`` is not a finite number > 0.
    """
    return _Sample(interval, name=name)


def throttle_latest(interval: float, *, name: str | None = None) -> Operator[Any, Any]:
    """Emit at most one item per ``interval``: the first at once, then the newest.

    RxJava's ``throttleLatest``: an item arriving when no send happened in
    the last ``interval`` goes out at once; one arriving sooner is held
    (replacing, and dropping, an older held one) until ``interval`` after
    the previous send started. At the end the held item still waits for its
    turn, so the rate holds to the last item.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"throttle_latest"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``interval`` is not a finite number > 0.
    """
    return _ThrottleLatest(interval, name=name)


def delay(seconds: float, *, max_items: int = 1024, name: str | None = None) -> Operator[Any, Any]:
    """Shift every item ``seconds`` later, keeping order and losing nothing.

    An item received at ``t`` goes out at ``t + seconds`` (later if
    downstream is slow). The stage holds at most ``max_items`` items; when
    that many are waiting it stops reading, so upstream is backpressured and
    an item is received, and its clock started, only once there is room.
    At the end the held items still go out at their times, then the end.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"delay"``; see "Naming a stage" in ``docs/operators.md``).

    Raises:
        ValueError: ``seconds`` is not a finite number > 0, or
            ``max_items`` is not an int >= 1.
    """
    return _Delay(seconds, max_items, name=name)
