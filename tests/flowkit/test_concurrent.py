"""concurrent_map: order, the concurrency bound, errors, the contract."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator


async def double(x: int) -> int:
    await trio.lowlevel.checkpoint()
    return 2 * x


async def test_ordered_contract() -> None:
    await check_operator(
        lambda: flowkit.concurrent_map(double, max_concurrent=3),
        list(range(20)),
        expected=[2 * x for x in range(20)],
        max_buffered=3,
    )


async def test_unordered_contract() -> None:
    await check_operator(
        lambda: flowkit.concurrent_map(double, max_concurrent=3, ordered=False),
        list(range(20)),
        flatten=lambda out: sorted(x // 2 for x in out),
        max_buffered=3,
    )


class Probe:
    """An async function with per-item delays that records concurrency."""

    def __init__(self, delays: dict[int, float]) -> None:
        self.delays = delays
        self.in_flight = 0
        self.peak = 0
        self.finished: list[int] = []

    async def __call__(self, x: int) -> int:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await trio.sleep(self.delays[x])
        finally:
            self.in_flight -= 1
        self.finished.append(x)
        return x


async def test_ordered_output_under_random_completion_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(7)
    delays = {x: rng.choice([0.25, 0.5, 1.0, 2.0]) for x in range(50)}
    probe = Probe(delays)
    op = flowkit.concurrent_map(probe, max_concurrent=4)
    async with flowkit.open_pipeline(range(50), op) as out:
        got = [x async for x in out]
    assert got == list(range(50))
    assert probe.finished != list(range(50))  # they really did finish out of order
    assert probe.peak == 4
    assert op.statistics().buffered_peak <= 4


async def test_unordered_emits_as_completed(autojump_clock: trio.testing.MockClock) -> None:
    t0 = trio.current_time()
    probe = Probe({0: 3.0, 1: 1.0, 2: 2.0, 3: 0.5})
    op = flowkit.concurrent_map(probe, max_concurrent=4, ordered=False)
    async with flowkit.open_pipeline(range(4), op) as out:
        got = [(x, trio.current_time() - t0) async for x in out]
    assert got == [(3, 0.5), (1, 1.0), (2, 2.0), (0, 3.0)]


async def test_ordered_window_is_bounded_by_unsent_results(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Item 0 is slow; the rest finish at once but must wait for it. The
    # stage must not start a fifth call while four results wait unsent.
    probe = Probe({0: 10.0, **{x: 0.0 for x in range(1, 20)}})
    started: list[tuple[float, int]] = []
    t0 = trio.current_time()

    async def fn(x: int) -> int:
        started.append((trio.current_time() - t0, x))
        return await probe(x)

    op = flowkit.concurrent_map(fn, max_concurrent=4)
    async with flowkit.open_pipeline(range(20), op) as out:
        assert [x async for x in out] == list(range(20))
    assert sorted(x for at, x in started if at < 10) == [0, 1, 2, 3]
    assert op.statistics().buffered_peak == 4


async def test_error_propagates_with_original_type_and_cancels_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[int] = []

    async def fn(x: int) -> int:
        if x == 2:
            await trio.sleep(1)
            raise KeyError(x)
        try:
            await trio.sleep(100)
        except trio.Cancelled:
            cancelled.append(x)
            raise
        return x

    t0 = trio.current_time()
    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(range(5), flowkit.concurrent_map(fn, max_concurrent=3)):
            await trio.sleep_forever()
    assert trio.current_time() - t0 == 1
    assert sorted(cancelled) == [0, 1]


async def test_error_over_plain_channels_is_not_a_group() -> None:
    async def fn(x: int) -> int:
        raise ValueError(x)

    up_send, up_receive = trio.open_memory_channel[int](1)
    down_send, down_receive = trio.open_memory_channel[int](1)
    up_send.send_nowait(1)
    with pytest.raises(ValueError, match="1"):
        await flowkit.concurrent_map(fn, max_concurrent=2)(up_receive, down_send)
    assert down_receive.statistics().open_send_channels == 0


async def test_closed_downstream_cancels_calls_and_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe(dict.fromkeys(range(1000), 1.0))
    async with flowkit.open_pipeline(
        range(1000), flowkit.concurrent_map(probe, max_concurrent=8)
    ) as out:
        assert await out.receive() == 0
    assert probe.in_flight == 0


def test_max_concurrent_is_validated() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        flowkit.concurrent_map(double, max_concurrent=0)


@settings(max_examples=100, deadline=None)
@given(
    delays=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0]), min_size=1, max_size=40),
    bound=st.integers(1, 6),
    ordered=st.booleans(),
)
def test_property_order_bound_conservation(delays: list[float], bound: int, ordered: bool) -> None:
    probe = Probe(dict(enumerate(delays)))
    op = flowkit.concurrent_map(probe, max_concurrent=bound, ordered=ordered)
    seen: list[Any] = []

    async def main() -> None:
        async with flowkit.open_pipeline(range(len(delays)), op) as out:
            async for x in out:
                seen.append(x)
                stats = op.statistics()
                assert stats.items_in == stats.items_out + stats.buffered
                assert stats.buffered <= bound

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    if ordered:
        assert seen == list(range(len(delays)))
    else:
        assert sorted(seen) == list(range(len(delays)))
    assert probe.peak <= bound
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.buffered) == (len(delays),) * 2 + (0,)
    assert stats.buffered_peak <= bound
