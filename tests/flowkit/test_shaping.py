"""debounce / sample / throttle_latest / delay, on trio's MockClock.

Each timed operator is checked against a plain event-by-event model of its
semantics, on arrival times hypothesis picks. Arrivals are at whole seconds
and the operators' periods are irrational-ish, so no arrival ever ties with
a timer (a tie's order would be the scheduler's choice, not the operator's).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator

from . import _scenario

P = math.sqrt(2) / 2  # ~0.707: never a whole number of seconds, nor a sum of them


async def arrivals(gaps: list[int]) -> AsyncIterator[int]:
    """Item ``i`` is produced ``gaps[i]`` seconds after item ``i - 1``."""
    for index, gap in enumerate(gaps):
        await trio.sleep(gap)
        yield index


def timed(gaps: list[int]) -> list[tuple[float, int]]:
    return [(float(t), i) for i, t in enumerate(itertools.accumulate(gaps))]


def run_timed(make: Callable[[], Any], gaps: list[int]) -> list[tuple[float, int]]:
    async def main() -> list[tuple[float, int]]:
        async with flowkit.open_pipeline(arrivals(gaps), make()) as out:
            return [(round(trio.current_time(), 6), x) async for x in out]

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def rounded(events: list[tuple[float, int]]) -> list[tuple[float, int]]:
    return [(round(t, 6), x) for t, x in events]


# -- models ------------------------------------------------------------------------


def debounce_model(events: list[tuple[float, int]], quiet: float) -> list[tuple[float, int]]:
    out = []
    for (t, x), (t_next, _) in itertools.pairwise(events):
        if t_next - t > quiet:
            out.append((t + quiet, x))
    if events:
        out.append(events[-1])  # the end comes right after the last item
    return out


def sample_model(events: list[tuple[float, int]], period: float) -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = []
    held = None
    tick = period
    for t, x in events:
        while tick < t:
            if held is not None:
                out.append((tick, held))
                held = None
            tick += period
        held = x
    if held is not None:
        out.append((tick, held))
    return out


def throttle_latest_model(
    events: list[tuple[float, int]], period: float
) -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = []
    held = None
    gate = -math.inf
    for t, x in events:
        if held is not None and gate < t:
            out.append((gate, held))
            held, gate = None, gate + period
        if held is None and t >= gate:
            out.append((t, x))
            gate = t + period
        else:
            held = x
    if held is not None:
        out.append((gate, held))
    return out


gap_lists = st.lists(st.integers(0, 3), max_size=25)


@settings(max_examples=150, deadline=None)
@given(gaps=gap_lists)
def test_debounce_matches_the_model(gaps: list[int]) -> None:
    assert run_timed(lambda: flowkit.debounce(1.5), gaps) == rounded(
        debounce_model(timed(gaps), 1.5)
    )


@settings(max_examples=150, deadline=None)
@given(gaps=gap_lists)
def test_sample_matches_the_model(gaps: list[int]) -> None:
    assert run_timed(lambda: flowkit.sample(P), gaps) == rounded(sample_model(timed(gaps), P))


@settings(max_examples=150, deadline=None)
@given(gaps=gap_lists, period=st.sampled_from([P, 2 * P, 3.5 * P]))
def test_throttle_latest_matches_the_model(gaps: list[int], period: float) -> None:
    assert run_timed(lambda: flowkit.throttle_latest(period), gaps) == rounded(
        throttle_latest_model(timed(gaps), period)
    )


@settings(max_examples=150, deadline=None)
@given(gaps=gap_lists)
def test_delay_matches_the_model(gaps: list[int]) -> None:
    expected = [(t + 2.5, x) for t, x in timed(gaps)]
    assert run_timed(lambda: flowkit.delay(2.5), gaps) == rounded(expected)


LOSSY: dict[str, Callable[[], Any]] = {
    "debounce": lambda: flowkit.debounce(0.01),
    "sample": lambda: flowkit.sample(0.01),
    "throttle_latest": lambda: flowkit.throttle_latest(0.01),
}


@pytest.mark.parametrize("kind", sorted(LOSSY))
@settings(max_examples=60, deadline=None)
@given(plan=_scenario.plans, n=st.integers(0, 30))
def test_lossy_shaping_under_any_pacing(kind: str, plan: _scenario.Plan, n: int) -> None:
    # A slow, cancelling consumer: outputs are an ordered subsequence, the
    # newest item always comes out, and every other item is counted dropped.
    outcome = _scenario.run(LOSSY[kind], list(range(n)), plan, bound=1)
    got = outcome.outputs
    assert got == sorted(set(got))
    assert outcome.final.dropped == n - len(got)
    if n:
        assert got[-1] == n - 1


@settings(max_examples=60, deadline=None)
@given(plan=_scenario.plans, n=st.integers(0, 30), room=st.integers(1, 4))
def test_delay_is_lossless_and_bounded_under_any_pacing(
    plan: _scenario.Plan, n: int, room: int
) -> None:
    outcome = _scenario.run(
        lambda: flowkit.delay(0.05, max_items=room), list(range(n)), plan, bound=room
    )
    assert outcome.outputs == list(range(n))


# -- the contract ------------------------------------------------------------------


async def test_contract(autojump_clock: trio.testing.MockClock) -> None:
    # Fed at once: the lossy ones keep the newest (throttle_latest the first too).
    await check_operator(lambda: flowkit.debounce(0.5), [1, 2, 3], expected=[3], max_buffered=1)
    await check_operator(lambda: flowkit.sample(P), [1, 2, 3], expected=[3], max_buffered=1)
    await check_operator(
        lambda: flowkit.throttle_latest(P), [1, 2, 3], expected=[1, 3], max_buffered=1
    )
    await check_operator(lambda: flowkit.delay(1, max_items=2), [1, 2, 3], max_buffered=2)


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan, "1"])
def test_periods_are_validated(bad: Any) -> None:
    for factory in (flowkit.debounce, flowkit.sample, flowkit.throttle_latest, flowkit.delay):
        with pytest.raises(ValueError, match="must be a finite number > 0"):
            factory(bad)
    with pytest.raises(ValueError, match="max_items"):
        flowkit.delay(1, max_items=0)


# -- specific behaviour ------------------------------------------------------------


async def test_debounce_counts_replaced_items_as_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    op = flowkit.debounce(1)
    async with flowkit.open_pipeline(arrivals([0, 0, 0, 2, 0]), op) as out:
        got = [(trio.current_time(), x) async for x in out]
    assert got == [(1, 2), (2, 4)]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.buffered) == (5, 2, 3, 0)


async def test_sample_skips_ticks_missed_while_downstream_was_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def every_tenth() -> AsyncIterator[int]:
        for n in range(100):
            yield n
            await trio.sleep(0.1)

    async with flowkit.open_pipeline(every_tenth(), flowkit.sample(1), flowkit.buffer(1)) as out:
        got = []
        async for x in out:
            got.append((round(trio.current_time(), 6), x))
            await trio.sleep(2.5)  # a slow consumer: no burst of stale samples after
    times = [t for t, _ in got]
    assert all(b - a >= 2.5 for a, b in itertools.pairwise(times))
    assert got[-1][1] == 99  # the newest still comes out at the end


async def test_throttle_latest_holds_the_rate_to_the_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    op = flowkit.throttle_latest(1)
    async with flowkit.open_pipeline(range(5), op) as out:
        got = [(trio.current_time(), x) async for x in out]
    assert got == [(0, 0), (1, 4)]  # the last one waited for its turn
    assert op.statistics().dropped == 3


async def test_delay_stops_reading_when_full(autojump_clock: trio.testing.MockClock) -> None:
    op = flowkit.delay(10, max_items=3)
    async with flowkit.open_pipeline(range(7), op) as out:
        got = [(trio.current_time(), x) async for x in out]
    # three at a time: each batch waits for room, then its own 10 s
    assert got == [(10, 0), (10, 1), (10, 2), (20, 3), (20, 4), (20, 5), (30, 6)]
    assert op.statistics().buffered_peak == 3


async def test_delay_loses_held_items_to_a_crash_not_to_a_clean_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def crashing() -> AsyncIterator[int]:
        yield 1
        await trio.sleep(1)
        raise OSError("sensor gone")

    with pytest.raises(OSError, match="sensor gone"):
        async with flowkit.open_pipeline(crashing(), flowkit.delay(5)) as out:
            [x async for x in out]
