"""batch / adaptive_batch: contract, exact timing on the mock clock, adaptivity, properties."""

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

INPUTS = list(range(23))


def _flatten(out: Any) -> list[Any]:
    return [x for b in out for x in b]


# -- the contract ------------------------------------------------------------


async def test_batch_by_size_contract() -> None:
    out = await check_operator(lambda: flowkit.batch(5), INPUTS, flatten=_flatten, max_buffered=5)
    assert out == [INPUTS[i : i + 5] for i in range(0, 23, 5)]


async def test_timed_batch_contract(autojump_clock: Any) -> None:
    await check_operator(lambda: flowkit.batch(4, 0.5), INPUTS, flatten=_flatten, max_buffered=4)


async def test_weighted_batch_contract() -> None:
    await check_operator(
        lambda: flowkit.batch(10, weight=float, max_weight=10),
        INPUTS,
        flatten=_flatten,
        max_buffered=10,
    )


async def test_adaptive_batch_contract() -> None:
    await check_operator(
        lambda: flowkit.adaptive_batch(4), INPUTS, flatten=_flatten, max_buffered=4
    )


async def test_weighted_adaptive_batch_contract() -> None:
    await check_operator(
        lambda: flowkit.adaptive_batch(8, weight=float, max_weight=12),
        INPUTS,
        flatten=_flatten,
        max_buffered=8,
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0,), {}, "max_size"),
        ((2, 0), {}, "max_delay"),
        ((2,), {"weight": len}, "together"),
        ((2,), {"max_weight": 3}, "together"),
        ((2,), {"weight": len, "max_weight": 0}, "max_weight"),
    ],
)
def test_settings_are_validated(args: Any, kwargs: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        flowkit.batch(*args, **kwargs)


# -- batch over time ------------------------------------------------------------


async def _timeline(
    op: Any, sends: list[tuple[float, Any]], *, pause: float = 0.0, end_at: float | None = None
) -> list[tuple[float, Any]]:
    """Send ``(time, item)`` pairs, end the stream at ``end_at``; record arrivals."""
    up_send, up_receive = trio.open_memory_channel[Any](0)
    down_send, down_receive = trio.open_memory_channel[Any](0)
    seen: list[tuple[float, Any]] = []

    async def produce() -> None:
        async with up_send:
            for at, item in sends:
                await trio.sleep_until(at)
                await up_send.send(item)
            if end_at is not None:
                await trio.sleep_until(end_at)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        async with down_receive:
            async for value in down_receive:
                seen.append((trio.current_time(), value))
                if pause:
                    await trio.sleep(pause)
    return seen


async def test_batch_is_due_exactly_max_delay_after_its_first_item(autojump_clock: Any) -> None:
    sends = [(0.0, "a"), (0.4, "b"), (0.8, "c"), (1.5, "d"), (2.2, "e")]
    seen = await _timeline(flowkit.batch(10, 1.0), sends, end_at=10.0)
    # The first window opens with "a" at 0 and closes at exactly 1.0; the
    # second opens with "d" at 1.5 (not at the previous emission) and closes
    # at exactly 2.5. Nothing is emitted earlier, and the end at t=10 finds
    # nothing left to flush.
    assert seen == [(1.0, ["a", "b", "c"]), (2.5, ["d", "e"])]


async def test_full_batch_goes_at_once_and_the_rest_waits_its_window(
    autojump_clock: Any,
) -> None:
    op: flowkit.Operator[int, list[int]] = flowkit.batch(3, 2.0)
    seen = await _timeline(op, [(0.0, i) for i in range(5)], end_at=9.0)
    assert seen == [(0.0, [0, 1, 2]), (2.0, [3, 4])]
    assert op.statistics().batch_sizes == ((2, 1), (3, 1))


async def test_end_flushes_the_partial_batch_at_once(autojump_clock: Any) -> None:
    seen = await _timeline(flowkit.batch(10, 5.0), [(0.0, 1), (1.0, 2)], end_at=2.0)
    assert seen == [(2.0, [1, 2])]


async def test_no_empty_batches_while_idle(autojump_clock: Any) -> None:
    seen = await _timeline(flowkit.batch(10, 0.1), [(0.0, 1), (5.0, 2)], end_at=20.0)
    assert seen == [(0.1, [1]), (5.1, [2])]


async def test_size_only_batch_waits_for_size_or_end(autojump_clock: Any) -> None:
    seen = await _timeline(flowkit.batch(2), [(0.0, 1), (3.0, 2), (4.0, 3)], end_at=7.0)
    assert seen == [(3.0, [1, 2]), (7.0, [3])]


async def test_weight_splits_before_overflow(autojump_clock: Any) -> None:
    words = ["aaaa", "bbb", "cc", "dddddddddd", "e"]
    seen = await _timeline(
        flowkit.batch(10, 1.0, weight=len, max_weight=6), [(0.0, w) for w in words]
    )
    # "cc" would make 9 > 6: it starts the next batch; the 10-letter word is
    # heavier than the cap and travels alone; the tail goes out at the end.
    assert [value for _, value in seen] == [["aaaa"], ["bbb", "cc"], ["dddddddddd"], ["e"]]


async def test_slow_downstream_backpressures_and_is_timed(autojump_clock: Any) -> None:
    # The consumer takes 3 s per batch. "b" fills its batch at 0.5 and waits
    # for the consumer until t=3; meanwhile "c" is not taken from upstream.
    op: flowkit.Operator[str, list[str]] = flowkit.batch(1, 1.0)
    seen = await _timeline(op, [(0.0, "a"), (0.5, "b"), (0.6, "c")], pause=3.0)
    assert seen == [(0.0, ["a"]), (3.0, ["b"]), (6.0, ["c"])]
    stats = op.statistics()
    assert stats.send_blocked_seconds == pytest.approx(2.5 + 3.0)
    assert stats.buffered_peak == 1


# -- adaptive batch -------------------------------------------------------------


async def test_adaptive_fast_consumer_gets_batches_of_one(autojump_clock: Any) -> None:
    op: flowkit.Operator[int, list[int]] = flowkit.adaptive_batch(16)
    sends = [(0.1 * i, i) for i in range(30)]
    seen = await _timeline(op, sends)
    # no added latency: each item is delivered the instant it is sent
    assert [value for _, value in seen] == [[i] for i in range(30)]
    assert [at for at, _ in seen] == pytest.approx([0.1 * i for i in range(30)])
    stats = op.statistics()
    assert stats.batch_sizes == ((1, 30),)
    assert stats.buffered_peak == 1


async def test_adaptive_slow_consumer_gets_large_capped_batches(autojump_clock: Any) -> None:
    op: flowkit.Operator[int, list[int]] = flowkit.adaptive_batch(10)
    produced_at: list[float] = []
    up_send, up_receive = trio.open_memory_channel[int](0)
    down_send, down_receive = trio.open_memory_channel[list[int]](0)
    seen: list[tuple[float, list[int]]] = []

    async def produce() -> None:
        async with up_send:
            for i in range(35):
                await up_send.send(i)
                produced_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        async with down_receive:
            async for value in down_receive:
                seen.append((trio.current_time(), value))
                await trio.sleep(1.0)
    # The consumer is waiting at t=0, so the first batch goes at once with
    # whatever was ready in that instant (trio may run the producer a step
    # ahead); from then on every batch the sleeping consumer gets is full.
    assert [at for at, _ in seen] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [len(b) for _, b in seen[1:4]] == [10, 10, 10]
    assert _flatten([b for _, b in seen]) == list(range(35))
    # At the cap upstream waited: besides the first batch, exactly 10 items
    # were taken at t=0, then 10 more each time the consumer came back.
    first = len(seen[0][1])
    assert produced_at.count(0.0) == first + 10
    assert produced_at.count(1.0) == 10
    stats = op.statistics()
    assert dict(stats.batch_sizes)[10] == 3
    assert stats.buffered_peak == 10
    assert (stats.items_in, stats.items_out, stats.emitted) == (35, 35, 5)


async def test_adaptive_in_a_pipeline_batches_behind_a_slow_consumer(
    autojump_clock: Any,
) -> None:
    op: flowkit.Operator[int, list[int]] = flowkit.adaptive_batch(50)
    sizes: list[int] = []
    async with flowkit.open_pipeline(range(500), op, flowkit.buffer(1)) as out:
        async for value in out:
            sizes.append(len(value))
            await trio.sleep(0.1)
    assert sum(sizes) == 500
    assert max(sizes) == 50
    assert op.statistics().buffered_peak <= 50


async def test_adaptive_weight_cap(autojump_clock: Any) -> None:
    op: flowkit.Operator[str, list[str]] = flowkit.adaptive_batch(100, weight=len, max_weight=5)
    up_send, up_receive = trio.open_memory_channel[str](0)
    down_send, down_receive = trio.open_memory_channel[list[str]](0)

    async def produce() -> None:
        async with up_send:
            for word in ["a", "bb", "cc", "d", "eeeeeee", "f"]:
                await up_send.send(word)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        await trio.sleep(1)  # consumer busy elsewhere
        async with down_receive:
            got = [batch async for batch in down_receive]
    # a+bb+cc weighs exactly 5: full; "d" then goes to the waiting consumer;
    # the 7-letter word is over the cap and travels alone.
    assert got == [["a", "bb", "cc"], ["d"], ["eeeeeee"], ["f"]]


@pytest.mark.parametrize("make", [lambda: flowkit.batch(3, 1.0), lambda: flowkit.adaptive_batch(3)])
async def test_upstream_crash_does_not_flush_as_a_clean_end(make: Any) -> None:
    async def boom() -> Any:
        yield 1
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        async with flowkit.open_pipeline(boom(), make()) as out:
            with pytest.raises(StreamAborted):
                async for _ in out:
                    pass


# -- properties ---------------------------------------------------------------

BATCHERS: dict[str, tuple[Callable[[], Any], int]] = {
    "batch": (lambda: flowkit.batch(4, 0.03), 4),
    "batch_by_size": (lambda: flowkit.batch(3), 3),
    "weighted_batch": (lambda: flowkit.batch(5, 0.02, weight=lambda x: x % 3, max_weight=3), 5),
    "adaptive": (lambda: flowkit.adaptive_batch(4), 4),
    "weighted_adaptive": (
        lambda: flowkit.adaptive_batch(5, weight=lambda x: x % 3, max_weight=3),
        5,
    ),
}


@pytest.mark.parametrize("kind", sorted(BATCHERS))
@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, n=st.integers(min_value=0, max_value=40))
def test_batching_properties(kind: str, plan: _scenario.Plan, n: int) -> None:
    make, bound = BATCHERS[kind]
    outcome = _scenario.run(make, list(range(n)), plan, bound=bound)
    # lossless and ordered, even with the consumer's receives cancelled
    assert _flatten(outcome.outputs) == list(range(n))
    # never an empty batch, never over the size cap
    assert all(1 <= len(b) <= bound for b in outcome.outputs)
    final = outcome.final
    assert final.emitted == len(outcome.outputs)
    assert sum(size * count for size, count in final.batch_sizes) == n


# -- adaptive_batch before a throttle (docs/ops/batching.md) ----------------


async def _batch_sizes_before_a_throttle(burst: float | None) -> tuple[list[int], Any]:
    """200 items at 100/s -> adaptive_batch(10) -> throttle(20 per second)."""

    async def paced() -> Any:
        for i in range(200):
            yield i
            await trio.sleep(0.01)

    op = flowkit.adaptive_batch(10)
    async with flowkit.open_pipeline(paced(), op, flowkit.throttle(20, burst=burst)) as out:
        sizes = [len(batch) async for batch in out]
    return sizes, op.statistics().batch_sizes


async def test_before_a_throttle_the_burst_goes_out_as_single_items(
    autojump_clock: Any,
) -> None:
    # The measured effect the docs describe. With the default burst (= rate,
    # 20) the throttle is not busy until its bucket is empty, so the first
    # batches are single items (no latency added, as adaptive_batch
    # promises): a third or more of a short stream's batches.
    sizes, histogram = await _batch_sizes_before_a_throttle(burst=None)
    leading = next(i for i, size in enumerate(sizes) if size > 1)
    assert 20 <= leading <= 30
    assert dict(histogram)[1] == leading
    # Once the bucket is empty, each batch holds what came in one token
    # interval (100/s over 20/s: 5 items), never a single one.
    assert all(size >= 4 for size in sizes[leading:])
    assert sum(sizes) == 200


async def test_before_a_throttle_burst_1_batches_from_the_start(autojump_clock: Any) -> None:
    sizes, histogram = await _batch_sizes_before_a_throttle(burst=1)
    # Only the very first item (a full bucket of one) and the one right
    # after go alone; from then on each batch holds about an interval's worth.
    assert dict(histogram).get(1, 0) <= 2
    assert all(size >= 3 for size in sizes[2:])
    assert sum(sizes) == 200
