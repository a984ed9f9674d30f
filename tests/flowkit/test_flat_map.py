"""flat_map: sync and async inner streams, one at a time or several, bounded."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator

from . import _scenario


async def spread(n: int) -> AsyncIterator[tuple[int, int]]:
    for i in range(n):
        await trio.sleep(1)
        yield (n, i)


async def test_contract_sync_async_and_concurrent(autojump_clock: trio.testing.MockClock) -> None:
    expected = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
    await check_operator(
        lambda: flowkit.flat_map(lambda n: [(n, i) for i in range(n)]), [1, 2, 3], expected=expected
    )
    await check_operator(lambda: flowkit.flat_map(spread), [1, 2, 3], expected=expected)

    async def listing(n: int) -> list[tuple[int, int]]:
        await trio.sleep(0.5)
        return [(n, i) for i in range(n)]

    await check_operator(lambda: flowkit.flat_map(listing), [1, 2, 3], expected=expected)
    # Several at once: order across inner streams is not kept, so compare sorted.
    got = await check_operator(
        lambda: flowkit.flat_map(spread, max_concurrent=3),
        [1, 2, 3],
        lossless=False,
        max_buffered=3,
    )
    assert sorted(got) == expected


async def test_one_at_a_time_keeps_input_order_and_counts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    op = flowkit.flat_map(spread)
    async with flowkit.open_pipeline([2, 1], op) as out:
        got = [(trio.current_time(), v) async for v in out]
    assert got == [(1, (2, 0)), (2, (2, 1)), (3, (1, 0))]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.emitted, stats.buffered_peak) == (2, 2, 3, 1)


async def test_concurrent_inner_streams_overlap_and_stay_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    op = flowkit.flat_map(spread, max_concurrent=2)
    t0 = trio.current_time()
    async with flowkit.open_pipeline([3, 3, 3], op) as out:
        got = [v async for v in out]
    assert sorted(got) == sorted([(3, i) for i in range(3)] * 3)
    assert trio.current_time() - t0 == 6  # two run at once, then the third
    assert op.statistics().buffered_peak == 2


async def test_an_endless_inner_stream_is_read_lazily() -> None:
    op = flowkit.flat_map(lambda x: itertools.repeat(x))
    async with flowkit.open_pipeline(["a"], op, flowkit.take(1000)) as out:
        assert [x async for x in out] == ["a"] * 1000
    assert op.statistics().emitted < 1000 + 3 * 256  # a few chunks ahead at most


async def test_async_inner_streams_are_closed_on_every_path() -> None:
    closed: list[int] = []

    async def endless(n: int) -> AsyncIterator[int]:
        try:
            while True:
                yield n
                await trio.lowlevel.checkpoint()
        finally:
            closed.append(n)

    async with flowkit.open_pipeline([1, 2], flowkit.flat_map(endless, max_concurrent=2)) as out:
        async for _ in out:
            break  # downstream leaves
    assert sorted(closed) == [1, 2]


async def test_errors_propagate_with_their_type() -> None:
    async def broken(n: int) -> AsyncIterator[int]:
        yield n
        raise KeyError(n)

    for concurrency in (1, 3):
        with pytest.raises(KeyError):
            async with flowkit.open_pipeline(
                [1, 2, 3], flowkit.flat_map(broken, max_concurrent=concurrency)
            ) as out:
                [x async for x in out]
    with pytest.raises(TypeError, match="not an iterable"):
        async with flowkit.open_pipeline([1], flowkit.flat_map(lambda x: x)) as out:
            [x async for x in out]


def test_max_concurrent_is_validated() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        flowkit.flat_map(list, max_concurrent=0)


@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, items=st.lists(st.integers(0, 4), max_size=15))
def test_matches_the_model(plan: _scenario.Plan, items: list[int]) -> None:
    def expand(n: int) -> list[tuple[int, int]]:
        return [(n, i) for i in range(n)]

    model = [value for n in items for value in expand(n)]
    outcome = _scenario.run(lambda: flowkit.flat_map(expand), items, plan, bound=1)
    assert outcome.outputs == model
    assert outcome.final.emitted == len(model)

    async def slow(n: int) -> AsyncIterator[tuple[int, int]]:
        for value in expand(n):
            await trio.sleep(0.01 * (n + 1))
            yield value

    merged = _scenario.run(lambda: flowkit.flat_map(slow, max_concurrent=3), items, plan, bound=3)
    assert sorted(merged.outputs) == sorted(model)
    for n in {n for n in items if items.count(n) == 1}:  # each inner stream keeps its order
        own: list[Any] = [v for v in merged.outputs if v[0] == n]
        assert own == expand(n)
