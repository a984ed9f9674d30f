"""join: an interval join of two keyed streams on trio's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator


async def timed(events: list[tuple[float, Any]]) -> AsyncIterator[Any]:
    """Each item at its own time (seconds from the start)."""
    start = trio.current_time()
    for at, item in events:
        await trio.sleep_until(start + at)
        yield item


def key(item: tuple[str, int]) -> str:
    return item[0]


def conserved(stats: flowkit.OperatorStatistics) -> bool:
    return stats.items_in == stats.items_out + stats.dropped + stats.filtered + stats.buffered


def run_join(
    left: list[tuple[float, Any]], right: list[tuple[float, Any]], within: float, max_items: int
) -> tuple[list[tuple[Any, Any]], flowkit.OperatorStatistics]:
    async def main() -> tuple[list[tuple[Any, Any]], flowkit.OperatorStatistics]:
        op = flowkit.join(timed(right), key=key, within=within, max_items=max_items)
        async with flowkit.open_pipeline(timed(left), op) as out:
            return [pair async for pair in out], op.statistics()

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def join_model(
    left: list[tuple[float, Any]], right: list[tuple[float, Any]], within: float
) -> set[tuple[Any, Any]]:
    return {
        (a, b)
        for at_a, a in left
        for at_b, b in right
        if key(a) == key(b) and abs(at_a - at_b) <= within
    }


async def test_contract(autojump_clock: trio.testing.MockClock) -> None:
    # Statistics count both inputs, which the checker cannot know: tested below.
    got = await check_operator(
        lambda: flowkit.join(timed([(0, ("a", 9))]), key=key, within=10),
        [("a", 1), ("b", 2), ("a", 3)],
        lossless=False,
        skip={"statistics"},
    )
    assert sorted(got) == [(("a", 1), ("a", 9)), (("a", 3), ("a", 9))]


async def test_pairs_only_within_the_window(autojump_clock: trio.testing.MockClock) -> None:
    left = [(0, ("k", "L0")), (5, ("k", "L5")), (5, ("j", "J5"))]
    right = [(1, ("k", "R1")), (7, ("k", "R7")), (20, ("k", "R20"))]
    op = flowkit.join(timed(right), key=key, within=2)
    t0 = trio.current_time()
    async with flowkit.open_pipeline(timed(left), op) as out:
        got = [(trio.current_time() - t0, a[1], b[1]) async for a, b in out]
    # each pair is emitted when its second item arrives
    assert got == [(1, "L0", "R1"), (7, "L5", "R7")]
    stats = op.statistics()
    assert (stats.items_in, stats.emitted, stats.items_out, stats.filtered) == (6, 2, 4, 2)
    assert stats.buffered == 0
    assert conserved(stats)


def test_a_full_side_backpressures_its_input() -> None:
    # Six items at once on the left, room for two: the rest wait upstream
    # until the held ones are too old to pair, so later ones still pair.
    left = [(0, ("k", n)) for n in range(6)]
    right = [(0, ("k", "r"))]
    got, stats = run_join(left, right, within=1, max_items=2)
    assert stats.buffered_peak <= 4  # two per side
    assert conserved(stats)
    assert [a[1] for a, _ in got] == [0, 1]  # later items arrive after "r" expired


@pytest.mark.parametrize("bad", [{"within": 0}, {"within": float("inf")}, {"max_items": 0}])
def test_settings_are_validated(bad: dict[str, Any]) -> None:
    settings_: dict[str, Any] = {"key": key, "within": 1, **bad}
    with pytest.raises(ValueError, match=r"within|max_items"):
        flowkit.join((), **settings_)


async def test_a_key_error_propagates_with_its_type() -> None:
    def broken(item: Any) -> str:
        raise LookupError("no key")

    with pytest.raises(LookupError):
        async with flowkit.open_pipeline(
            [1], flowkit.join(timed([(0, 2)]), key=broken, within=1)
        ) as out:
            [pair async for pair in out]


times = st.integers(0, 12).map(float)
events = st.lists(st.tuples(times, st.sampled_from("ab")), max_size=10)


@settings(max_examples=100, deadline=None)
@given(left=events, right=events, within=st.sampled_from([0.5, 1.5, 3.5]))
def test_matches_the_brute_force_model(
    left: list[tuple[float, str]], right: list[tuple[float, str]], within: float
) -> None:
    # Left items at whole seconds, right ones at half past: no two arrive together.
    left_events = sorted((at, (k, f"L{i}")) for i, (at, k) in enumerate(left))
    right_events = sorted((at + 0.25, (k, f"R{i}")) for i, (at, k) in enumerate(right))
    got, stats = run_join(left_events, right_events, within, max_items=100)
    assert len(got) == len(set(got))
    assert set(got) == join_model(left_events, right_events, within)
    assert conserved(stats)
    assert stats.buffered == 0
    paired = {a for a, _ in got} | {b for _, b in got}
    assert stats.items_out == len(paired)
    assert stats.filtered == len(left) + len(right) - len(paired)
