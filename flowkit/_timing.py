"""Timed operators: ``keepalive``, the three timeouts, ``throttle``.

All of them read time from trio's clock only (``trio.current_time``,
``move_on_at``, ``sleep_until``), so under
``trio.testing.MockClock(autojump_threshold=0)`` they are deterministic and
instant, and tests can assert the exact moment something happened.

Each timed wait is a cancel scope around a ``receive``. Flowkit channels and
trio memory channels are cancel-atomic, so a receive cut short by a
deadline took nothing: no item is ever lost to a timer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, overload

import trio

from ._exceptions import CompletionTimeout, IdleTimeout, InitialTimeout, StreamTimeout
from ._operator import (
    CHUNK,
    Lookahead,
    Operator,
    downstream_has_room,
    receive_some,
    receive_until,
    waiting_receivers,
)

__all__ = ["completion_timeout", "idle_timeout", "initial_timeout", "keepalive", "throttle"]

T = TypeVar("T")
H = TypeVar("H")

#: Tolerance, in tokens, for float rounding in the token bucket: without it
#: a wait computed to refill exactly ``cost`` tokens can land a hair short
#: and spin on zero-length sleeps.
_TOKEN_EPSILON = 1e-9


def _positive(name: str, value: float) -> float:
    if not isinstance(value, int | float) or not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class _Forwarding(Operator[T, Any]):
    """Shared bookkeeping: forward a chunk, keeping conservation exact."""

    async def _forward(self, send: trio.abc.SendChannel[Any], chunk: list[T]) -> None:
        counters = self._counters
        counters.items_in += len(chunk)
        counters.set_buffered(len(chunk))
        await self._emit(send, chunk)
        counters.items_out += len(chunk)
        counters.emitted += len(chunk)
        counters.set_buffered(0)


class _KeepAlive(_Forwarding[T]):
    _kind = "keepalive"
    _output_hop = 1  # a heartbeat must not wait behind queued items

    def __init__(self, interval: float, make: Callable[[], Any], *, name: str | None) -> None:
        super().__init__(name=name)
        self._interval = _positive("interval", interval)
        self._make = make

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[Any]
    ) -> None:
        counters = self._counters
        interval = self._interval
        deadline = trio.current_time() + interval
        while True:
            try:
                chunk = await receive_until(receive, deadline)
            except trio.EndOfChannel:
                return
            if chunk is not None:
                await self._forward(send, chunk)
            elif _downstream_waiting(send):
                # Upstream idle for ``interval`` and a consumer is parked on
                # the channel: the heartbeat is taken at once, never queued.
                await self._emit(send, (self._make(),))
                counters.injected += 1
                counters.emitted += 1
            # Reset after every item, every injection, and every skipped
            # deadline (downstream busy): a busy consumer is not starved, and
            # checking again only one interval later is what keeps
            # heartbeats from piling up behind it.
            deadline = trio.current_time() + interval


def _downstream_waiting(send: trio.abc.SendChannel[Any]) -> bool:
    waiting = waiting_receivers(send)
    if waiting is None:
        return downstream_has_room(send)
    return waiting > 0


_MISSING: Any = object()


@overload
def keepalive(interval: float, heartbeat: H, *, name: str | None = None) -> Operator[Any, Any]: ...
@overload
def keepalive(
    interval: float, *, heartbeat_factory: Callable[[], H], name: str | None = None
) -> Operator[Any, Any]: ...
def keepalive(
    interval: float,
    heartbeat: Any = _MISSING,
    *,
    heartbeat_factory: Callable[[], Any] | None = None,
    name: str | None = None,
) -> Operator[Any, Any]:
    """Inject a heartbeat when upstream is idle and downstream is waiting.

    Akka's ``keepAlive``. Every ``interval`` seconds without an upstream item
    the stage looks downstream: if a consumer is parked in ``receive`` (or,
    for a channel that cannot tell, there is room), it sends one heartbeat;
    if the consumer is busy, it sends nothing, because a busy consumer is not
    idle and a heartbeat queued behind its work would only arrive late and
    in a crowd. Either way the idle clock restarts, as it does after every
    item, so at most one heartbeat is ever outstanding.

    Args:
        interval: idle seconds before a heartbeat.
        heartbeat: the value to inject (the same object every time).
        heartbeat_factory: called for each heartbeat instead (fresh values,
            timestamps). Give exactly one of ``heartbeat`` and
            ``heartbeat_factory``; two spellings, because a callable can be
            a legitimate heartbeat value.
        name: the stage's label in its statistics, repr and error messages
            (default: the operator's kind, ``"keepalive"``).

    Statistics: heartbeats count in ``injected`` and ``emitted``, never in
    ``items_in``/``items_out``.
    """
    if (heartbeat is _MISSING) == (heartbeat_factory is None):
        raise TypeError("keepalive() takes exactly one of heartbeat and heartbeat_factory")
    if heartbeat_factory is None:
        value = heartbeat

        def heartbeat_factory() -> Any:
            return value

    return _KeepAlive(interval, heartbeat_factory, name=name)


class _Timeout(_Forwarding[T]):
    """Forward items; fail with a typed error when a deadline passes.

    Subclasses say when the first deadline falls and how it moves after
    each chunk. The deadline covers only the wait for upstream: time spent
    blocked on a slow downstream is the consumer's doing, not an idle
    producer's, so it never trips an idle or initial timeout.
    """

    _error_type: type[StreamTimeout] = StreamTimeout
    _what = ""

    def __init__(self, seconds: float, *, name: str | None) -> None:
        super().__init__(name=name)
        self._limit = _positive("seconds", seconds)

    def _next_deadline(self, now: float) -> float:
        return now + self._limit

    def _error(self) -> StreamTimeout:
        return self._error_type(
            f"{self._kind} exceeded ({self.name}): {self._what} within {self._limit:g} s",
            limit=self._limit,
        )

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        deadline = trio.current_time() + self._limit
        while True:
            try:
                chunk = await receive_until(receive, deadline)
            except trio.EndOfChannel:
                return
            if chunk is None:
                raise self._error()
            await self._forward(send, chunk)
            deadline = self._next_deadline(trio.current_time())


class _IdleTimeout(_Timeout[T]):
    _kind = "idle_timeout"
    _error_type = IdleTimeout
    _what = "no item arrived after the previous one"


class _InitialTimeout(_Timeout[T]):
    _kind = "initial_timeout"
    _error_type = InitialTimeout
    _what = "the first item did not arrive"

    def _next_deadline(self, now: float) -> float:
        return math.inf


class _CompletionTimeout(_Timeout[T]):
    _kind = "completion_timeout"
    _error_type = CompletionTimeout
    _what = "the stream did not end"

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        # One deadline for everything, including time blocked on downstream:
        # the limit is on the whole stream as the consumer experiences it.
        with trio.move_on_after(self._limit):
            while True:
                try:
                    chunk = await receive_some(receive)
                except trio.EndOfChannel:
                    return
                await self._forward(send, chunk)
        raise self._error()


def idle_timeout(seconds: float, *, name: str | None = None) -> Operator[Any, Any]:
    """Fail with :class:`~flowkit.IdleTimeout` if upstream goes quiet.

    The clock starts when the stage starts and restarts each time it has
    forwarded an item; if no item arrives within ``seconds`` of that, the
    stage raises. Time blocked on a slow downstream does not count. The
    error propagates like any other: downstream sees ``StreamAborted``,
    ``open_pipeline`` raises the ``IdleTimeout``.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"idle_timeout"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _IdleTimeout(seconds, name=name)


def initial_timeout(seconds: float, *, name: str | None = None) -> Operator[Any, Any]:
    """Fail with :class:`~flowkit.InitialTimeout` if the first item is late.

    Only the first item is timed (from the moment the stage starts); after
    it the stage is a plain pass-through. An empty stream that ends in time
    is fine.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"initial_timeout"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _InitialTimeout(seconds, name=name)


def completion_timeout(seconds: float, *, name: str | None = None) -> Operator[Any, Any]:
    """Fail with :class:`~flowkit.CompletionTimeout` if the stream runs too long.

    The whole stream must end within ``seconds`` of the stage starting,
    including any time spent waiting on a slow downstream. The stage raises
    at that moment, whatever it is doing.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"completion_timeout"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _CompletionTimeout(seconds, name=name)


class _Throttle(Operator[T, T]):
    _kind = "throttle"

    def __init__(
        self,
        rate: float,
        per: float,
        burst: float | None,
        cost: Callable[[T], float] | None,
        *,
        name: str | None,
    ) -> None:
        super().__init__(name=name)
        self._fill = _positive("rate", rate) / _positive("per", per)
        self._capacity = _positive("burst", burst if burst is not None else rate)
        self._cost = cost

    def _price(self, item: T) -> float:
        if self._cost is None:
            return 1.0
        price = self._cost(item)
        if not 0 <= price <= self._capacity:
            raise ValueError(
                f"{self.name}: item cost {price!r} is outside [0, burst={self._capacity:g}]; "
                "an item dearer than the bucket can hold could never be sent"
            )
        return float(price)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[T], send: trio.abc.SendChannel[T]
    ) -> None:
        counters = self._counters
        fill = self._fill
        capacity = self._capacity
        tokens = capacity  # full at start
        stamp = trio.current_time()
        # Items are priced where they are ready and taken only once paid
        # for: a throttle waiting for tokens leaves them upstream, so the
        # stage before it sees it busy (an adaptive_batch grows its batch
        # meanwhile instead of committing a batch of one to the hop).
        upstream = Lookahead(receive, counters)
        prices: list[float] = []  # of the first len(prices) ready items
        while True:
            try:
                ready = await upstream.ready()
            except trio.EndOfChannel:
                return
            now = trio.current_time()
            tokens = min(capacity, tokens + (now - stamp) * fill)
            stamp = now
            # The longest affordable run goes out in one send.
            end, run_cost = 0, 0.0
            while end < min(len(ready), CHUNK):
                if end == len(prices):
                    try:
                        prices.append(self._price(ready[end]))
                    except Exception:
                        if end == 0:
                            raise
                        break  # send what is paid for, then fail on this item
                if run_cost + prices[end] > tokens + _TOKEN_EPSILON:
                    break
                run_cost += prices[end]
                end += 1
            if end == 0:
                await trio.sleep_until(stamp + (prices[0] - tokens) / fill)
                continue
            chunk = upstream.take(end)
            del prices[:end]
            await self._emit(send, chunk)
            # Pay at the moment of sending: had the send blocked, the refill
            # during the block must not let the next items burst past the
            # bucket's capacity.
            now = trio.current_time()
            tokens = min(capacity, tokens + (now - stamp) * fill) - run_cost
            stamp = now
            counters.items_out += end
            counters.emitted += end
            counters.set_buffered(counters.items_in - counters.items_out)


def throttle(
    rate: float,
    *,
    per: float = 1.0,
    burst: float | None = None,
    cost: Callable[[Any], float] | None = None,
    name: str | None = None,
) -> Operator[Any, Any]:
    """Shape the stream to ``rate`` items (or cost units) per ``per`` seconds.

    A token bucket holding up to ``burst`` tokens (default ``rate``), full at
    start and refilled continuously at ``rate / per`` tokens per second.
    Sending an item takes ``cost(item)`` tokens (default 1); when the bucket
    is short the stage waits exactly until it has refilled enough. It never
    drops: a waiting throttle stops reading, so upstream is backpressured.
    Inside a pipeline it prices items where they wait in the hop before it
    and takes only what it can send now, so while it waits for tokens it
    holds nothing and counts as busy downstream: the stage before it sees a
    full hop (an ``adaptive_batch`` grows its batch, a ``latest`` keeps the
    newest value). Over other channels it must receive an item to price it.

    So in any window of ``t`` seconds at most ``burst + rate * t / per``
    cost units go out, and items are never delayed more than the bucket
    requires.

    ``name=`` labels the stage in its statistics, repr and error messages
    (a refused cost names it; default ``"throttle"``; see "Naming a stage"
    in ``docs/operators.md``).

    Raises:
        ValueError: at construction for a non-positive ``rate``/``per``/
            ``burst``; while running, at the first item whose cost is
            negative or above ``burst`` (it could never be sent, so waiting
            would hang the stream forever). The error propagates as the
            pipeline's error; the items before it have been sent on.
    """
    return _Throttle(rate, per, burst, cost, name=name)
