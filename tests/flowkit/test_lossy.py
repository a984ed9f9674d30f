"""drop_oldest / drop_newest / latest / conflate: contract, exact survivors, timing, properties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit import StreamAborted
from flowkit.testing import check_operator

from . import _scenario

INPUTS = list(range(20))


def _concat(a: list[int], b: list[int]) -> list[int]:
    return a + b


def _flatten(out: Any) -> list[Any]:
    return [x for value in out for x in value]


# -- the contract ------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3])
async def test_drop_oldest_contract(size: int) -> None:
    await check_operator(
        lambda: flowkit.drop_oldest(size), INPUTS, lossless=False, max_buffered=size
    )


async def test_drop_oldest_with_room_is_lossless() -> None:
    await check_operator(lambda: flowkit.drop_oldest(len(INPUTS)), INPUTS, expected=INPUTS)


@pytest.mark.parametrize("size", [1, 3])
async def test_drop_newest_contract(size: int) -> None:
    await check_operator(
        lambda: flowkit.drop_newest(size), INPUTS, lossless=False, max_buffered=size
    )


async def test_drop_newest_with_room_is_lossless() -> None:
    await check_operator(lambda: flowkit.drop_newest(len(INPUTS)), INPUTS, expected=INPUTS)


async def test_latest_contract() -> None:
    await check_operator(flowkit.latest, INPUTS, lossless=False, max_buffered=1)


async def test_conflate_contract_is_lossless() -> None:
    # Merging lists by concatenation makes every input visible in the output.
    await check_operator(
        lambda: flowkit.conflate(_concat),
        [[x] for x in INPUTS],
        flatten=lambda out: [[x] for x in _flatten(out)],
    )


async def test_conflate_without_merge_is_latest() -> None:
    op: flowkit.Operator[int, int] = flowkit.conflate()
    assert op.statistics().name == "latest"
    await check_operator(flowkit.conflate, INPUTS, lossless=False, max_buffered=1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_sizes_are_validated(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_items"):
        flowkit.drop_oldest(bad)
    with pytest.raises(ValueError, match="max_items"):
        flowkit.drop_newest(bad)


# -- a stalled consumer: exact survivors, drop counts, the callback -----------


async def _stalled(op: Any, items: list[Any], stall: float = 5.0) -> tuple[list[Any], float]:
    """Feed ``items`` as fast as possible while the consumer sleeps ``stall`` s.

    Returns what the consumer got afterwards and when the producer finished.
    """
    up_send, up_receive = trio.open_memory_channel[Any](0)
    down_send, down_receive = trio.open_memory_channel[Any](0)
    finished = -1.0

    async def produce() -> None:
        nonlocal finished
        async with up_send:
            for item in items:
                await up_send.send(item)
        finished = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        await trio.sleep(stall)
        assert op.statistics().buffered <= len(items)
        async with down_receive:
            outputs = [x async for x in down_receive]
    return outputs, finished


async def test_drop_oldest_keeps_the_newest_and_reports_drops(autojump_clock: Any) -> None:
    dropped: list[int] = []
    op = flowkit.drop_oldest(3, on_drop=dropped.append)
    outputs, finished = await _stalled(op, list(range(10)))
    assert finished == 0.0  # upstream never waited for the stalled consumer
    assert outputs == [7, 8, 9]
    assert dropped == [0, 1, 2, 3, 4, 5, 6]  # in order, including the one in flight
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.buffered) == (10, 3, 7, 0)
    assert stats.buffered_peak == 3
    assert stats.send_blocked_seconds == pytest.approx(5.0)


async def test_drop_newest_keeps_the_first_and_rejects_the_rest(autojump_clock: Any) -> None:
    dropped: list[int] = []
    op = flowkit.drop_newest(3, on_drop=dropped.append)
    outputs, finished = await _stalled(op, list(range(10)))
    assert finished == 0.0
    assert outputs == [0, 1, 2]
    assert dropped == [3, 4, 5, 6, 7, 8, 9]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.buffered_peak) == (10, 3, 7, 3)


async def test_latest_delivers_only_the_newest(autojump_clock: Any) -> None:
    op: flowkit.Operator[int, int] = flowkit.latest()
    outputs, finished = await _stalled(op, list(range(10)))
    assert (outputs, finished) == ([9], 0.0)
    stats = op.statistics()
    assert (stats.items_out, stats.dropped, stats.emitted, stats.buffered_peak) == (1, 9, 1, 1)


async def test_conflate_folds_everything_while_stalled(autojump_clock: Any) -> None:
    op = flowkit.conflate(lambda acc, x: acc + x)
    outputs, finished = await _stalled(op, list(range(10)))
    assert (outputs, finished) == ([45], 0.0)
    stats = op.statistics()
    # one value represents ten inputs: nothing dropped
    assert (stats.items_in, stats.items_out, stats.emitted, stats.dropped) == (10, 10, 1, 0)
    assert stats.buffered_peak == 10


async def test_on_drop_error_crashes_the_stage(autojump_clock: Any) -> None:
    def refuse(item: int) -> None:
        raise KeyError(item)

    with pytest.raises(ExceptionGroup) as info:  # the test's own nursery wraps it
        await _stalled(flowkit.drop_oldest(1, on_drop=refuse), [1, 2, 3])
    assert info.group_contains(KeyError, depth=1)


async def test_merge_error_propagates_with_original_type(autojump_clock: Any) -> None:
    def merge(acc: int, x: int) -> int:
        raise ZeroDivisionError

    with pytest.raises(ExceptionGroup) as info:
        await _stalled(flowkit.conflate(merge), [1, 2, 3])
    assert info.group_contains(ZeroDivisionError, depth=1)


# -- over time ----------------------------------------------------------------


async def _timeline(
    op: Any, sends: list[tuple[float, Any]], receive_every: float | None
) -> list[tuple[float, Any]]:
    """Send ``(time, item)`` pairs; the consumer waits ``receive_every`` between receives."""
    up_send, up_receive = trio.open_memory_channel[Any](0)
    down_send, down_receive = trio.open_memory_channel[Any](0)
    seen: list[tuple[float, Any]] = []

    async def produce() -> None:
        async with up_send:
            for at, item in sends:
                await trio.sleep_until(at)
                await up_send.send(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        async with down_receive:
            async for value in down_receive:
                seen.append((trio.current_time(), value))
                if receive_every:
                    await trio.sleep(receive_every)
    return seen


async def test_latest_adds_no_latency_for_a_waiting_consumer(autojump_clock: Any) -> None:
    seen = await _timeline(flowkit.latest(), [(1.0, "a"), (2.5, "b"), (4.0, "c")], None)
    assert seen == [(1.0, "a"), (2.5, "b"), (4.0, "c")]


async def test_latest_while_busy_delivers_newest_when_consumer_returns(
    autojump_clock: Any,
) -> None:
    # Items every 0.3 s; the consumer needs 1 s per item.
    sends = [(0.3 * i, i) for i in range(10)]
    op: flowkit.Operator[int, int] = flowkit.latest()
    seen = await _timeline(op, sends, 1.0)
    # 0 passes straight through at t=0; at t=1 the newest is 3 (sent at 0.9),
    # at t=2 it is 6 (1.8), at t=3 it is 9 (2.7, the last).
    assert seen == [(0.0, 0), (1.0, 3), (2.0, 6), (3.0, 9)]
    stats = op.statistics()
    assert (stats.items_out, stats.dropped) == (4, 6)


async def test_conflate_while_busy_merges_runs(autojump_clock: Any) -> None:
    sends = [(0.3 * i, [i]) for i in range(10)]
    seen = await _timeline(flowkit.conflate(_concat), sends, 1.0)
    assert seen == [(0.0, [0]), (1.0, [1, 2, 3]), (2.0, [4, 5, 6]), (3.0, [7, 8, 9])]


async def test_drop_oldest_while_busy(autojump_clock: Any) -> None:
    sends = [(0.1 * i, i) for i in range(10)]
    dropped: list[int] = []
    seen = await _timeline(flowkit.drop_oldest(2, on_drop=dropped.append), sends, 1.0)
    # 0 straight through; by t=1 items 1..9 arrived and only 8, 9 remain.
    assert seen == [(0.0, 0), (1.0, 8), (2.0, 9)]
    assert dropped == list(range(1, 8))


# -- pipelines, errors ----------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: flowkit.drop_oldest(4),
        lambda: flowkit.drop_newest(4),
        flowkit.latest,
        lambda: flowkit.conflate(lambda a, b: b),
    ],
)
async def test_in_pipeline_output_is_an_ordered_subsequence(make: Any) -> None:
    op = make()
    async with flowkit.open_pipeline(range(2000), op, flowkit.buffer(1)) as out:
        got = [x async for x in out]
    assert got
    assert got == sorted(set(got))
    assert got[-1] == 1999 or op.statistics().dropped  # newest kept unless drop_newest
    stats = op.statistics()
    assert stats.items_in == 2000
    assert stats.items_in == stats.items_out + stats.dropped
    assert stats.buffered == 0


async def test_drop_oldest_keeps_the_tail_in_a_pipeline(autojump_clock: Any) -> None:
    async def source() -> Any:
        for i in range(50):
            yield i

    async with flowkit.open_pipeline(source(), flowkit.drop_oldest(3), flowkit.buffer(1)) as out:
        await trio.sleep(1)  # stall: the producer runs to completion meanwhile
        got = [x async for x in out]
    # one item sits in the 1-item hop after the stage; the stage kept the last three
    assert got[-3:] == [47, 48, 49]
    assert len(got) <= 4


async def test_upstream_crash_is_not_a_clean_end() -> None:
    async def boom() -> Any:
        yield 1
        yield 2
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        async with flowkit.open_pipeline(boom(), flowkit.drop_oldest(8)) as out:
            with pytest.raises(StreamAborted):
                async for _ in out:
                    pass


# -- properties ---------------------------------------------------------------

LOSSY: dict[str, tuple[Callable[[], Any], int]] = {
    "drop_oldest": (lambda: flowkit.drop_oldest(3), 3),
    "drop_newest": (lambda: flowkit.drop_newest(3), 3),
    "latest": (flowkit.latest, 1),
}


@pytest.mark.parametrize("kind", sorted(LOSSY))
@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, n=st.integers(min_value=0, max_value=40))
def test_lossy_properties(kind: str, plan: _scenario.Plan, n: int) -> None:
    make, bound = LOSSY[kind]
    items = list(range(n))
    outcome = _scenario.run(make, items, plan, bound=bound)
    got = outcome.outputs
    final = outcome.final
    # order kept, no duplicates, no invention
    assert got == sorted(set(got))
    assert set(got) <= set(items)
    # nothing accepted is lost, even with the consumer's receives cancelled:
    # everything counted out was received, everything else was counted dropped
    assert final.items_in == n
    assert final.items_out == len(got)
    assert final.dropped == n - len(got)
    if n and kind != "drop_newest":
        assert got[-1] == n - 1  # the newest item always survives
    if n and kind == "drop_newest":
        assert got[0] == 0  # the oldest item always survives


@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, n=st.integers(min_value=0, max_value=40))
def test_drop_callback_sees_exactly_the_missing_items(plan: _scenario.Plan, n: int) -> None:
    dropped: list[int] = []
    outcome = _scenario.run(
        lambda: flowkit.drop_oldest(2, on_drop=dropped.append), list(range(n)), plan, bound=2
    )
    assert dropped == sorted(dropped)
    assert sorted(dropped + outcome.outputs) == list(range(n))
    assert outcome.final.dropped == len(dropped)


@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, n=st.integers(min_value=0, max_value=40))
def test_conflate_properties(plan: _scenario.Plan, n: int) -> None:
    outcome = _scenario.run(
        lambda: flowkit.conflate(_concat), [[i] for i in range(n)], plan, bound=None
    )
    # lossless and ordered whatever the timing and the cancellations
    assert _flatten(outcome.outputs) == list(range(n))
    assert all(outcome.outputs)
    assert outcome.final.items_out == n
    assert outcome.final.emitted == len(outcome.outputs)
