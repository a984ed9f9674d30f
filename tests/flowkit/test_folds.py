"""scan / fold / reduce: semantics, fusion, the contract, and a reference model."""

from __future__ import annotations

import functools
import itertools
import operator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator

from . import _scenario


async def slow_add(acc: int, item: int) -> int:
    await trio.sleep(0.01)
    return acc + item


# -- the contract --------------------------------------------------------------


async def test_scan_contract_sync_and_async(autojump_clock: trio.testing.MockClock) -> None:
    await check_operator(lambda: flowkit.scan(operator.add, 0), [1, 2, 3], expected=[1, 3, 6])
    await check_operator(lambda: flowkit.scan(slow_add, 10), [1, 2, 3], expected=[11, 13, 16])


async def test_fold_and_reduce_contract(autojump_clock: trio.testing.MockClock) -> None:
    # They emit only at the end, so a consumer that leaves after one item
    # while upstream stays open never gets one: the abandonment step cannot
    # apply (it is covered by test_fold_stops_reading_when_downstream_left).
    for make, expected in [
        (lambda: flowkit.fold(operator.add, 0), [6]),
        (lambda: flowkit.fold(slow_add, 0), [6]),
        (lambda: flowkit.reduce(max), [3]),
        (lambda: flowkit.reduce(slow_add), [6]),
    ]:
        await check_operator(make, [1, 2, 3], expected=expected, skip={"abandonment"})


# -- semantics -----------------------------------------------------------------


async def test_scan_emits_one_running_value_per_item_and_not_the_initial() -> None:
    op = flowkit.scan(lambda acc, x: [*acc, x], [])
    async with flowkit.open_pipeline("abc", op) as out:
        assert [x async for x in out] == [["a"], ["a", "b"], ["a", "b", "c"]]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.emitted, stats.buffered) == (3, 3, 3, 0)
    async with flowkit.open_pipeline([], flowkit.scan(operator.add, 0)) as out:
        assert [x async for x in out] == []


async def test_scan_is_fused_and_keeps_its_state_across_chunks() -> None:
    n = 5000  # many chunks
    op = flowkit.scan(operator.add, 0)
    async with flowkit.open_pipeline(range(n), op, flowkit.map(lambda x: x)) as out:
        got = [x async for x in out]
    assert got == list(itertools.accumulate(range(n)))
    assert op.statistics().items_out == n


async def test_scan_failure_delivers_the_values_before_it() -> None:
    def step(acc: int, x: int) -> int:
        if x == 4:
            raise KeyError(x)
        return acc + x

    seen: list[int] = []
    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(
            range(10), flowkit.scan(step, 0), drain_on_error=True
        ) as out:
            async for x in out:
                seen.append(x)
    assert seen == [0, 1, 3, 6]


async def test_fold_emits_once_at_the_end_and_initial_for_an_empty_stream() -> None:
    op = flowkit.fold(operator.add, 100)
    async with flowkit.open_pipeline(range(1000), op) as out:
        assert [x async for x in out] == [100 + sum(range(1000))]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.emitted, stats.buffered) == (1000, 1000, 1, 0)
    empty = flowkit.fold(operator.add, 100)
    async with flowkit.open_pipeline([], empty) as out:
        assert [x async for x in out] == [100]
    assert empty.statistics().emitted == 1


async def test_reduce_of_an_empty_stream_emits_nothing() -> None:
    op = flowkit.reduce(operator.add)
    async with flowkit.open_pipeline([], op) as out:
        assert [x async for x in out] == []
    assert op.statistics().emitted == 0
    async with flowkit.open_pipeline([7], flowkit.reduce(operator.add)) as out:
        assert [x async for x in out] == [7]


async def test_fold_counts_what_it_holds_as_buffered_until_the_end() -> None:
    op = flowkit.fold(operator.add, 0)
    send, receive = trio.open_memory_channel[int](0)
    out_send, out_receive = trio.open_memory_channel[int](1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, receive, out_send)
        async with send:
            for x in range(5):
                await send.send(x)
            await trio.testing.wait_all_tasks_blocked()
            stats = op.statistics()
            assert (stats.items_in, stats.buffered, stats.items_out) == (5, 5, 0)
        assert await out_receive.receive() == 10
    assert op.statistics().buffered == 0


async def test_fold_error_propagates_and_emits_nothing() -> None:
    def step(acc: int, x: int) -> int:
        if x == 3:
            raise ValueError("bad reading")
        return acc + x

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad reading"):
        async with flowkit.open_pipeline(
            range(10), flowkit.fold(step, 0), drain_on_error=True
        ) as out:
            with pytest.raises(flowkit.StreamAborted):
                async for x in out:
                    seen.append(x)
    assert seen == []


async def test_fold_stops_reading_when_downstream_left() -> None:
    op = flowkit.fold(operator.add, 0)
    send, receive = trio.open_memory_channel[int](0)
    out_send, out_receive = trio.open_memory_channel[int](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, receive, out_send)
        await send.send(1)
        out_receive.close()  # the consumer leaves before the end
        with pytest.raises(trio.BrokenResourceError):
            for x in range(10):
                await send.send(x)
    assert op.statistics().items_in < 10  # it stopped reading: the sends above failed


# -- a reference model ---------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, items=st.lists(st.integers(-5, 5), max_size=30))
def test_scan_matches_itertools_accumulate(plan: _scenario.Plan, items: list[int]) -> None:
    outcome = _scenario.run(lambda: flowkit.scan(operator.add, 0), items, plan, bound=1)
    assert outcome.outputs == list(itertools.accumulate(items))
    assert outcome.final.items_out == len(items)


@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, items=st.lists(st.integers(-5, 5), max_size=30))
def test_fold_and_reduce_match_functools_reduce(plan: _scenario.Plan, items: list[int]) -> None:
    folded = _scenario.run(lambda: flowkit.fold(operator.sub, 0), items, plan, bound=None)
    assert folded.outputs == [functools.reduce(operator.sub, items, 0)]
    reduced = _scenario.run(lambda: flowkit.reduce(operator.sub), items, plan, bound=None)
    assert reduced.outputs == ([functools.reduce(operator.sub, items)] if items else [])


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers(-5, 5), max_size=600), split=st.integers(1, 300))
def test_fused_scan_in_a_pipeline_matches_the_model(items: list[int], split: int) -> None:
    async def main() -> list[Any]:
        # A buffer between two scans: one fused into the pump, one in the consumer.
        stages = [flowkit.scan(operator.add, 0), flowkit.buffer(split), flowkit.scan(max, -99)]
        async with flowkit.open_pipeline(items, *stages) as out:
            return [x async for x in out]

    expected = list(itertools.accumulate(itertools.accumulate(items), max, initial=-99))[1:]
    assert trio.run(main) == expected
