"""Restarts with backoff: ``restart_source`` and ``restart`` (Akka's RestartSource/RestartFlow).

When the wrapped source or stage fails, a fresh one is made by calling the
factory again, after an exponential backoff with full jitter: the ``k``-th
restart within the window waits a uniformly random time in ``[0,
min(max_backoff, min_backoff * 2**k))``, so many clients failing together do
not come back in lockstep. At most ``max_restarts`` restarts may happen
within any ``within`` seconds; the failure after that propagates with its
original type. A wrapped source or stage that *ends* normally ends the
stream: only failures restart (Akka's ``onFailuresWithBackoff``).

A restarted *stage* loses what it held when it crashed (a partial batch,
calls in flight). Those items are never silently lost: they are counted in
``dropped`` and passed to ``on_restart``. Items waiting in front of the
stage, not yet taken, are fed to the next one.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from contextlib import closing
from typing import Any

import trio

from ._channel import FlowReceiveChannel, FlowSendChannel, open_channel
from ._checks import check_count
from ._operator import Operator, _is_broken, receive_some
from ._stats import OperatorStatistics
from ._tasks import aclose_shielded
from ._timing import _positive

__all__ = ["restart", "restart_source"]

#: Called as ``on_restart(error, lost)`` before each restart.
OnRestart = Callable[[BaseException, int], Any]

#: Capacity, in items, of the channels between a ``restart`` stage and its inner stage.
_INNER_HOP = 16


class _Backoff:
    """The restart budget and the backoff schedule, shared by both wrappers."""

    def __init__(
        self,
        min_backoff: float,
        max_backoff: float,
        max_restarts: int,
        within: float,
        rng: random.Random | None,
    ) -> None:
        self.min = _positive("min_backoff", min_backoff)
        self.max = _positive("max_backoff", max_backoff)
        if self.max < self.min:
            raise ValueError(
                f"max_backoff ({max_backoff!r}) is below min_backoff ({min_backoff!r})"
            )
        self.max_restarts = check_count(max_restarts, "max_restarts")
        self.within = within if within == math.inf else _positive("within", within)
        self.rng = rng or random.Random()
        self.recent: deque[float] = deque()  # when the restarts in the window happened
        self.restarts = 0

    async def wait(self, error: BaseException) -> None:
        """Sleep before the next restart, or raise ``error`` if the budget is spent."""
        now = trio.current_time()
        while self.recent and self.recent[0] <= now - self.within:
            self.recent.popleft()
        if len(self.recent) >= self.max_restarts:
            error.add_note(
                f"flowkit: gave up after {len(self.recent)} restart(s) within {self.within:g} s"
            )
            raise error
        cap = min(self.max, self.min * 2 ** len(self.recent))
        self.recent.append(now)
        self.restarts += 1
        await trio.sleep(self.rng.uniform(0, cap))


class RestartSource:
    """An async iterable that re-creates its source after each failure.

    Made by :func:`restart_source`; use it as a pipeline's source.
    ``restarts`` counts the restarts so far.
    """

    def __init__(
        self,
        factory: Callable[[], AsyncIterable[Any] | Iterable[Any]],
        backoff: _Backoff,
        on_restart: OnRestart | None,
    ) -> None:
        self._factory = factory
        self._backoff = backoff
        self._on_restart = on_restart

    @property
    def restarts(self) -> int:
        return self._backoff.restarts

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            source = self._factory()
            try:
                if isinstance(source, AsyncIterable):
                    iterator = aiter(source)
                    try:
                        async for item in iterator:
                            yield item
                    finally:
                        await aclose_shielded(iterator)
                else:
                    for item in source:
                        yield item
                return
            except Exception as error:
                if self._on_restart is not None:
                    self._on_restart(error, 0)  # a source holds nothing
                await self._backoff.wait(error)


class _Restart(Operator[Any, Any]):
    _kind = "restart"

    def __init__(
        self,
        factory: Callable[[], Any],
        backoff: _Backoff,
        on_restart: OnRestart | None,
        *,
        name: str | None,
    ) -> None:
        super().__init__(name=name)
        self._factory = factory
        self._backoff = backoff
        self._on_restart = on_restart
        #: Counters of the inner stages that have finished (crashed), summed.
        self._done = (0, 0, 0)  # items_out, dropped, filtered
        self._inner: Any = None

    @property
    def restarts(self) -> int:
        return self._backoff.restarts

    def statistics(self) -> OperatorStatistics:
        self._sync()
        return super().statistics()

    def _sync(self) -> None:
        """Fold the inner stages' counts into this stage's, keeping conservation."""
        counters = self._counters
        out, dropped, filtered = self._done
        if self._inner is not None:
            inner = self._inner.statistics()
            out, filtered = out + inner.items_out, filtered + inner.filtered
            dropped += inner.dropped
        counters.items_out, counters.dropped, counters.filtered = out, dropped, filtered
        counters.set_buffered(counters.items_in - out - dropped - filtered)

    async def _run(
        self, receive: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[Any]
    ) -> None:
        feed_send: FlowSendChannel[Any]
        feed_receive: FlowReceiveChannel[Any]
        out_send: FlowSendChannel[Any]
        out_receive: FlowReceiveChannel[Any]
        feed_send, feed_receive = open_channel(_INNER_HOP)
        out_send, out_receive = open_channel(_INNER_HOP)
        feeding = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._feed, receive, feed_send, feeding)
            nursery.start_soon(self._supervise, feed_receive, out_send, feeding)
            try:
                await self._forward(out_receive, send)
            except trio.BrokenResourceError:
                if not _is_broken(send):
                    raise
                nursery.cancel_scope.cancel()  # downstream left: stop everything
        # Ended: whatever was taken from upstream but never reached an inner
        # stage (the last one ended by itself, or downstream left) is lost.
        self._sync()
        out, dropped, filtered = self._done
        self._done = (out, dropped + self._counters.buffered, filtered)
        self._sync()

    async def _feed(
        self,
        receive: trio.abc.ReceiveChannel[Any],
        feed: FlowSendChannel[Any],
        feeding: trio.CancelScope,
    ) -> None:
        counters = self._counters
        with feeding, closing(feed):
            while True:
                try:
                    chunk = await receive_some(receive, _INNER_HOP)
                except trio.EndOfChannel:
                    return
                counters.items_in += len(chunk)
                self._sync()
                try:
                    await feed.send_all(chunk)
                except trio.BrokenResourceError:
                    return  # the inner stage ended by itself: stop reading

    async def _supervise(
        self, feed: FlowReceiveChannel[Any], out: FlowSendChannel[Any], feeding: trio.CancelScope
    ) -> None:
        # Closed synchronously: an ``aclose`` checkpoint while an error is
        # leaving could let a sibling's BrokenResourceError cancel this task.
        with closing(feed), closing(out):
            while True:
                inner = self._factory()
                if not callable(getattr(inner, "statistics", None)):
                    raise TypeError(
                        f"{self.name}: the factory must return a stage with statistics() "
                        f"(a flowkit operator), got {inner!r}: the items it holds at a crash "
                        "are counted from them"
                    )
                self._inner = inner
                taken_before = feed.statistics().items_received
                try:
                    # Clones: the inner stage closes its ends, the channels live on.
                    await inner(feed.clone(), out.clone())
                except Exception as error:
                    stats = inner.statistics()
                    # Lost: what it took from the feed and did not account
                    # for (held, or taken in a chunk it never got to).
                    taken = feed.statistics().items_received - taken_before
                    lost = taken - stats.items_out - stats.dropped - stats.filtered
                    out_count, dropped, filtered = self._done
                    self._done = (
                        out_count + stats.items_out,
                        dropped + stats.dropped + lost,
                        filtered + stats.filtered,
                    )
                    self._inner = None
                    self._sync()
                    if self._on_restart is not None:
                        self._on_restart(error, lost)
                    await self._backoff.wait(error)
                    continue
                # Ended normally (at upstream's end, or by itself, as a take
                # does): so does the stream; upstream need not be read on.
                feeding.cancel()
                return

    async def _forward(self, out: FlowReceiveChannel[Any], send: trio.abc.SendChannel[Any]) -> None:
        with closing(out):
            while True:
                try:
                    chunk = await receive_some(out)
                except trio.EndOfChannel:
                    return
                await self._emit(send, chunk)
                self._counters.emitted += len(chunk)


def restart_source(
    factory: Callable[[], AsyncIterable[Any] | Iterable[Any]],
    *,
    min_backoff: float,
    max_backoff: float,
    max_restarts: int,
    within: float = math.inf,
    on_restart: OnRestart | None = None,
    rng: random.Random | None = None,
) -> RestartSource:
    """A source that calls ``factory()`` again, after a backoff, each time it fails.

    Akka's ``RestartSource.onFailuresWithBackoff``. ``factory`` returns a
    fresh iterable or async iterable (a new connection, a new generator).
    Its items are yielded as they come; when iterating it raises, it is
    closed, ``on_restart(error, 0)`` is called, and after the backoff a new
    one is made. The ``k``-th restart within the window waits a uniformly
    random time in ``[0, min(max_backoff, min_backoff * 2**k))`` (full
    jitter); more than ``max_restarts`` failures within ``within`` seconds
    raise the last one (with a note saying so). A source that ends normally
    ends the stream.

    Args:
        factory: makes the source; called once per run.
        min_backoff: the first backoff's cap, in seconds.
        max_backoff: the largest cap, in seconds.
        max_restarts: restarts allowed within any ``within`` seconds.
        within: the window, in seconds (default: the whole run).
        on_restart: called with the error and the number of items lost
            (always 0 for a source: it holds none) before each backoff.
        rng: the jitter's random source (pass a seeded one in tests).

    Raises:
        ValueError: a backoff or window that is not a finite number > 0
            (``within`` may be ``math.inf``), ``max_backoff < min_backoff``,
            or ``max_restarts`` not an int >= 1.
    """
    return RestartSource(
        factory, _Backoff(min_backoff, max_backoff, max_restarts, within, rng), on_restart
    )


def restart(
    factory: Callable[[], Any],
    *,
    min_backoff: float,
    max_backoff: float,
    max_restarts: int,
    within: float = math.inf,
    on_restart: OnRestart | None = None,
    rng: random.Random | None = None,
    name: str | None = None,
) -> Operator[Any, Any]:
    """A stage that runs ``factory()``'s stage and makes a new one when it fails.

    Akka's ``RestartFlow.onFailuresWithBackoff``. ``factory`` returns a
    fresh flowkit operator each time (one object is one stage). The items it
    held when it crashed (its ``buffered``: a partial batch, calls in
    flight) are lost with it; they are counted in this stage's ``dropped``
    and passed to ``on_restart(error, lost)``, never silently. Items still
    waiting in front of it go to the next one. The backoff and the budget
    are those of :func:`restart_source`. An error from upstream
    (``StreamAborted``) is not the stage's failure: it propagates at once.
    An inner stage that ends normally ends the stream.

    Statistics: ``items_in`` from upstream; ``items_out``, ``filtered`` and
    ``dropped`` summed over the inner stages, plus the items lost at
    crashes in ``dropped``; ``emitted`` the values forwarded; ``buffered``
    what is between the two ends (at most two hops of 16 items and what the
    inner stage holds). The stage's ``restarts`` attribute counts restarts.

    ``name=`` labels the stage in its statistics, repr and error messages
    (default ``"restart"``; see "Naming a stage" in ``docs/operators.md``).
    """
    return _Restart(
        factory,
        _Backoff(min_backoff, max_backoff, max_restarts, within, rng),
        on_restart,
        name=name,
    )
