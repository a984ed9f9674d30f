"""A randomised run of one operator, for the property tests of lossy and batching stages.

A producer with random gaps feeds the operator, a consumer with random pauses
receives with random timeouts (so receives are cancelled mid-wait), and an
observer samples ``statistics()`` all along. Every observation is checked
for conservation and for the operator's bound. Everything runs on trio's
``MockClock``, so a scenario is deterministic and instant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import strategies as st

import flowkit

Make = Callable[[], Any]


@attrs.frozen
class Plan:
    """What hypothesis varies: pacing on both sides, timeouts, channel kinds."""

    produce_gaps: list[float]
    consume_pauses: list[float]
    receive_timeouts: list[float]
    flow_upstream: bool
    flow_downstream: bool


_times = st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.05, 0.2])

plans = st.builds(
    Plan,
    produce_gaps=st.lists(_times, min_size=1, max_size=8),
    consume_pauses=st.lists(_times, min_size=1, max_size=8),
    receive_timeouts=st.lists(
        st.sampled_from([0.0, 0.001, 0.02, 0.1, 1.0]), min_size=1, max_size=8
    ),
    flow_upstream=st.booleans(),
    flow_downstream=st.booleans(),
)


@attrs.frozen
class Outcome:
    outputs: list[Any]
    observations: int
    final: flowkit.OperatorStatistics


def _check(stats: flowkit.OperatorStatistics, bound: int | None) -> None:
    balance = stats.items_out + stats.dropped + stats.filtered + stats.buffered
    assert stats.items_in == balance, f"conservation broken: {stats!r}"
    if bound is not None:
        assert stats.buffered <= bound, f"bound {bound} exceeded: {stats!r}"
        assert stats.buffered_peak <= bound, f"peak over bound {bound}: {stats!r}"


def run(make: Make, items: list[Any], plan: Plan, *, bound: int | None) -> Outcome:
    """Run one scenario to completion and return what the consumer saw."""
    return trio.run(
        _main, make, items, plan, bound, clock=trio.testing.MockClock(autojump_threshold=0)
    )


async def _main(make: Make, items: list[Any], plan: Plan, bound: int | None) -> Outcome:
    op = make()
    up_send: trio.abc.SendChannel[Any]
    up_receive: trio.abc.ReceiveChannel[Any]
    down_send: trio.abc.SendChannel[Any]
    down_receive: trio.abc.ReceiveChannel[Any]
    if plan.flow_upstream:
        up_send, up_receive = flowkit.open_channel(2)
    else:
        up_send, up_receive = trio.open_memory_channel[Any](0)
    if plan.flow_downstream:
        down_send, down_receive = flowkit.open_channel(1)
    else:
        down_send, down_receive = trio.open_memory_channel[Any](0)
    outputs: list[Any] = []
    observations = 0
    done = False

    def observe() -> None:
        nonlocal observations
        observations += 1
        _check(op.statistics(), bound)

    async def produce() -> None:
        async with up_send:
            for index, item in enumerate(items):
                gap = plan.produce_gaps[index % len(plan.produce_gaps)]
                if gap:
                    await trio.sleep(gap)
                try:
                    await up_send.send(item)
                except trio.BrokenResourceError:
                    return  # it ended early (a take) and closed its receive end
                observe()

    async def watch() -> None:
        while not done:
            observe()
            await trio.sleep(0.003)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        nursery.start_soon(watch)
        async with down_receive:
            step = 0
            while True:
                pause = plan.consume_pauses[step % len(plan.consume_pauses)]
                # Every fourth receive waits as long as it takes, so a plan
                # of tiny timeouts still makes progress.
                timeout = plan.receive_timeouts[step % len(plan.receive_timeouts)]
                if step % 4 == 3:
                    timeout = math.inf
                step += 1
                if pause:
                    await trio.sleep(pause)
                with trio.move_on_after(timeout):
                    try:
                        outputs.append(await down_receive.receive())
                    except trio.EndOfChannel:
                        break
                observe()
        done = True
    final = op.statistics()
    _check(final, bound)
    return Outcome(outputs, observations, final)
