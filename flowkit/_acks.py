"""Acknowledgement of source items only once the pipeline is done with them.

A source whose items must be acknowledged (a Redis Streams consumer group,
a queue) may acknowledge an item only once everything the pipeline made
from it is committed by the sink, or was dropped or filtered out. The
obvious design makes every item an envelope carrying an *ack set* that each
operator merges when it combines items (a batch, a window, a fold) and
settles when it drops them. That touches every operator, slows the fused
hot path of every pipeline, and still trusts each custom operator to
propagate envelopes it knows nothing about.

:class:`AckTracker` needs none of that. It rests on the one invariant every
stage already keeps and ``check_operator`` already checks, conservation::

    items_in == items_out + dropped + filtered + buffered

A stage's ``buffered`` counts every item it has taken and not yet let go:
a pending batch, a window, calls in flight, and, for a sink, what it has
not committed yet. So when every hop of the pipeline is empty and every
stage reports ``buffered == 0``, no item the source emitted is held
anywhere: each one has been committed, dropped or filtered, whatever the
operators did with it. At such a **settle point** every item emitted so far
is settled at once, in source order. Items emitted later belong to the next
settle point, so nothing is ever acknowledged early: an overcount (a stage
still counting an item it has passed on) only delays an acknowledgement.

Settle points come by themselves: whenever the source waits (for a read
round trip, for new entries), the pipeline drains and its last busy stage
parks on an empty hop, which is where the tracker looks (a hook the
pipeline installs on its hops). A source that has emitted
``max_unsettled`` items without a settle point pauses until one comes, so
the unsettled set is bounded; stages that hold items until a *count*
(``count_window``, ``fold``) can need more than that, so after
``stall_timeout`` without a settle point the source is let through once
more (counted in ``extensions``).

What makes it safe, and what a pipeline bound to a tracker checks:

* every stage must keep statistics: a stage without ``statistics()`` could
  hold items unseen, so binding it raises :class:`ContractViolation`;
* a stage that hands items to tasks outside its statistics (``group_by``'s
  substreams) says so with ``_acks_opaque`` and is refused the same way;
* a ``broadcast`` branch that is a plain channel must feed a pipeline bound
  to the same tracker (fan-out is settled when every branch has), or the
  check raises :class:`ContractViolation` at the next settle point;
* items the consumer has received from the pipeline's output are settled:
  put the commit in a stage (a sink) that counts what it has not committed
  as ``buffered``;
* a pipeline that did not end cleanly (failed, cancelled, left early)
  settles nothing more: what it held stays unacknowledged, for redelivery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence, Sized
from typing import Any, Generic, Protocol, TypeVar

import attrs
import trio

from ._channel import FlowReceiveChannel
from ._checks import check_count
from ._exceptions import ContractViolation
from ._operator import Operator
from ._stats import OperatorStatistics, _Counters

__all__ = ["AckStatistics", "AckTracker"]

T = TypeVar("T")

#: How often a paused source looks for a settle point by itself, in case the
#: last stage to let go parks on a channel the tracker cannot hook (a plain
#: trio channel feeding a branch pipeline).
_POLL = 0.05


@attrs.frozen
class AckStatistics:
    """A snapshot of an :class:`AckTracker`.

    Attributes:
        emitted: items the source handed to the pipeline.
        settled: items settled (committed, dropped or filtered), to acknowledge.
        unsettled: emitted and not settled yet (``emitted - settled``).
        settle_points: settle points that settled at least one item.
        extensions: times a paused source was let through after
            ``stall_timeout`` without a settle point.
    """

    emitted: int = 0
    settled: int = 0
    unsettled: int = 0
    settle_points: int = 0
    extensions: int = 0


class _Bound(Protocol):
    """What a pipeline shows the tracker (a :class:`PipelineView`)."""

    def held(self) -> int: ...

    def branch_states(self) -> Iterator[object]: ...

    def source_state(self) -> object | None: ...


class PipelineView:
    """What a bound pipeline holds: its hops, its stages, its consumer's local items.

    Args:
        stages: every stage, as given (fused ones keep their own counters).
        hops: the states of the flowkit channels between the tasks.
        local: the items the pipeline's output took but not handed out yet.
        source: the pipeline's source when it is a channel (a branch pipeline).
    """

    def __init__(
        self, stages: Sequence[object], hops: Sequence[Any], local: Sized, source: object
    ) -> None:
        for stage in stages:
            check_stage(stage)
        self._counters = [
            counters
            for stage in stages
            if isinstance(counters := getattr(stage, "_counters", None), _Counters)
        ]
        self._others = [stage for stage in stages if not isinstance(stage, Operator)]
        self._extra = [held for stage in stages if (held := getattr(stage, "_acks_held", None))]
        self._branches = [
            branches() for stage in stages if (branches := getattr(stage, "_acks_branches", None))
        ]
        self._hops = list(hops)
        self._local = local
        self._source = source

    def held(self) -> int:
        """Items anywhere in the pipeline now (an overcount is safe, never an undercount)."""
        n: int = len(self._local) + sum(len(hop.items) for hop in self._hops)
        n += sum(counters.buffered for counters in self._counters)
        n += sum(stage.statistics().buffered for stage in self._others)  # type: ignore[attr-defined]
        n += sum(held() for held in self._extra)
        source = self._source
        if isinstance(source, FlowReceiveChannel):
            n += len(source._state.items)
        elif source is not None:
            used: Any = getattr(source.statistics(), "current_buffer_used", 0)  # type: ignore[attr-defined]
            n += int(used)
        return n

    def branch_states(self) -> Iterator[object]:
        for branches in self._branches:
            yield from branches

    def source_state(self) -> object | None:
        return getattr(self._source, "_state", None)


class AckTracker(Generic[T]):
    """Which emitted items a pipeline is done with, for a source that acknowledges.

    The source calls :meth:`emitted` for each item as it hands it over
    (right before ``yield``, with no checkpoint in between), awaits
    :meth:`wait_for_room` before reading more, and acknowledges what
    :meth:`take_settled` returns. The pipeline binds itself: pass
    ``acks=tracker`` to ``open_pipeline``, or give the source an ``acks``
    attribute (flowkit_redis's group source has one).

    Args:
        max_unsettled: how many items may be emitted and not settled before
            the source pauses (the bound on work to redo after a crash).
        stall_timeout: seconds a paused source waits for a settle point
            before it is let through once more.
    """

    def __init__(self, *, max_unsettled: int = 4096, stall_timeout: float = 1.0) -> None:
        check_count(max_unsettled, "max_unsettled")
        if not stall_timeout > 0:
            raise ValueError(f"stall_timeout must be > 0, not {stall_timeout!r}")
        self.max_unsettled = max_unsettled
        self.stall_timeout = stall_timeout
        self._unsettled: list[T] = []
        self._settled: list[T] = []
        self._bound: list[_Bound] = []
        self._abandoned = False
        self._wakeup = trio.Event()
        self._emitted = 0
        self._settled_total = 0
        self._points = 0
        self._extensions = 0

    def __repr__(self) -> str:
        return f"<flowkit AckTracker unsettled={len(self._unsettled)}>"

    def statistics(self) -> AckStatistics:
        return AckStatistics(
            emitted=self._emitted,
            settled=self._settled_total,
            unsettled=len(self._unsettled),
            settle_points=self._points,
            extensions=self._extensions,
        )

    @property
    def unsettled(self) -> int:
        return len(self._unsettled)

    def emitted(self, token: T) -> None:
        """Record that the item acknowledged by ``token`` is being handed over now.

        Raises:
            ContractViolation: no pipeline is bound, so the item could never
                be settled (the source was iterated by hand, or read by a
                stage such as ``merge`` rather than being the pipeline's
                source).
        """
        if not self._bound:
            raise ContractViolation(
                "an acknowledging source must be the source of an open_pipeline (or the "
                "pipeline must be given acks=): nothing bound to its AckTracker could "
                "settle its items"
            )
        self._unsettled.append(token)
        self._emitted += 1

    def check(self) -> None:
        """Settle every emitted item if the bound pipelines hold none right now.

        Cheap when there is nothing to settle. Raises
        :class:`ContractViolation` for a ``broadcast`` branch that feeds
        nothing bound to this tracker.
        """
        if not self._unsettled or self._abandoned or not self._bound:
            return
        if any(view.held() for view in self._bound):
            return
        sources = {id(view.source_state()) for view in self._bound}
        for view in self._bound:
            for state in view.branch_states():
                if state is None or id(state) not in sources:
                    raise ContractViolation(
                        "acked pipeline: a broadcast branch feeds a consumer that is not "
                        "bound to the same AckTracker, so its items cannot be settled "
                        "(start the branch's pipeline with acks= the same tracker)"
                    )
        self._settled.extend(self._unsettled)
        self._settled_total += len(self._unsettled)
        self._unsettled = []
        self._points += 1
        self._wakeup.set()

    async def wait_for_room(self) -> None:
        """Return once fewer than ``max_unsettled`` items are unsettled.

        After ``stall_timeout`` without a settle point it returns anyway
        (an extension), so stages that let go only after more items
        (a count window not yet full) do not deadlock the source.
        """
        if len(self._unsettled) < self.max_unsettled:
            return
        self.check()
        deadline = trio.current_time() + self.stall_timeout
        while len(self._unsettled) >= self.max_unsettled:
            if trio.current_time() >= deadline:
                self._extensions += 1
                return
            with trio.move_on_at(min(deadline, trio.current_time() + _POLL)):
                await self._changed()
            self.check()

    async def take_settled(self) -> list[T]:
        """Wait until some items are settled; return them (oldest first) and forget them."""
        while not self._settled:
            await self._changed()
        settled, self._settled = self._settled, []
        return settled

    def take_settled_nowait(self) -> list[T]:
        """The items settled so far (possibly none), forgotten here."""
        settled, self._settled = self._settled, []
        return settled

    async def _changed(self) -> None:
        await self._wakeup.wait()
        self._wakeup = trio.Event()

    def _bind(self, view: _Bound) -> Callable[[bool], None]:
        """Attach a pipeline; returns what the pipeline calls when it ends (clean or not)."""
        self._bound.append(view)

        def ended(clean: bool) -> None:
            if clean:
                self.check()
                self._bound.remove(view)
            else:
                self._abandoned = True  # nothing it held may be settled
            self._wakeup.set()

        return ended


def check_stage(stage: object) -> None:
    """Refuse, with a :class:`ContractViolation`, a stage an acked pipeline cannot see into."""
    statistics: Any = getattr(stage, "statistics", None)
    if getattr(stage, "_acks_opaque", False):
        raise ContractViolation(
            f"acked pipeline: {stage!r} hands items to tasks its statistics do not count, "
            "so the pipeline cannot tell when they are done; it cannot run before an "
            "acknowledging sink"
        )
    if not callable(statistics) or not isinstance(statistics(), OperatorStatistics):
        raise ContractViolation(
            f"acked pipeline: stage {stage!r} keeps no statistics(), so the items it "
            "holds are invisible and could be acknowledged early; give it statistics() "
            "returning flowkit.OperatorStatistics whose `buffered` counts what it holds"
        )
