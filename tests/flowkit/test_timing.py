"""keepalive, the three timeouts, throttle: contract and exact timing.

Every timed test runs on trio's MockClock (the ``autojump_clock`` fixture),
so the assertions are about exact moments, never about real sleeps. Times
are relative to the start of each test and chosen to be exact in binary
floating point.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator


def now(t0: float) -> float:
    return trio.current_time() - t0


async def timed_source(
    t0: float, schedule: Sequence[tuple[float, Any]], *, end: float | None
) -> AsyncIterator[Any]:
    """Yield each value at its (relative) time; end at ``end`` (None: never)."""
    for at, value in schedule:
        await trio.sleep_until(t0 + at)
        yield value
    if end is None:
        await trio.sleep_forever()
    await trio.sleep_until(t0 + end)


async def collect(out: AsyncIterator[Any], t0: float) -> list[tuple[float, Any]]:
    return [(now(t0), item) async for item in out]


# ---------------------------------------------------------------- keepalive


async def test_keepalive_contract() -> None:
    await check_operator(lambda: flowkit.keepalive(1000, "hb"), [1, 2, 3], expected=[1, 2, 3])


async def test_keepalive_fires_after_interval_and_resets_on_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    op = flowkit.keepalive(1, "hb")
    source = timed_source(t0, [(0, "a"), (2.5, "b")], end=4.75)
    async with flowkit.open_pipeline(source, op) as out:
        got = await collect(out, t0)
    # idle clock: item at 0 -> hb at 1 -> hb at 2 -> item at 2.5 -> hb at 3.5;
    # the next deadline (4.5) passes too, then the stream ends at 4.75.
    assert got == [(0, "a"), (1, "hb"), (2, "hb"), (2.5, "b"), (3.5, "hb"), (4.5, "hb")]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.injected, stats.emitted) == (2, 2, 4, 6)


async def test_keepalive_never_queues_while_downstream_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A roomy plain trio channel downstream: a naive keepalive would fill it
    # with heartbeats while the consumer is busy.
    t0 = trio.current_time()
    up_send, up_receive = trio.open_memory_channel[str](0)
    down_send, down_receive = trio.open_memory_channel[str](10)
    op = flowkit.keepalive(1, "hb")
    got: list[tuple[float, str]] = []

    async def produce() -> None:
        async with up_send:
            await up_send.send("a")
            await trio.sleep_until(t0 + 7.75)

    async with trio.open_nursery() as nursery:
        await nursery.start(op, up_receive, down_send)
        nursery.start_soon(produce)
        async with down_receive:
            got.append((now(t0), await down_receive.receive()))
            await trio.sleep(4.5)  # busy: deadlines 1, 2, 3, 4 find nobody waiting
            assert down_receive.statistics().current_buffer_used == 0
            async for item in down_receive:
                got.append((now(t0), item))
    assert got == [(0, "a"), (5, "hb"), (6, "hb"), (7, "hb")]
    assert op.statistics().injected == 3


async def test_keepalive_resets_after_injection_not_on_a_fixed_grid(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    source = timed_source(t0, [(0.25, 1), (1.75, 2)], end=3)
    async with flowkit.open_pipeline(source, flowkit.keepalive(1, "hb")) as out:
        got = await collect(out, t0)
    assert got == [(0.25, 1), (1.25, "hb"), (1.75, 2), (2.75, "hb")]


async def test_keepalive_heartbeat_factory_is_called_per_heartbeat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    calls: list[float] = []

    def beat() -> tuple[str, float]:
        calls.append(now(t0))
        return ("hb", now(t0))

    source = timed_source(t0, [], end=3.5)
    async with flowkit.open_pipeline(source, flowkit.keepalive(1, heartbeat_factory=beat)) as out:
        got = [item async for item in out]
    assert got == [("hb", 1), ("hb", 2), ("hb", 3)]
    assert calls == [1, 2, 3]


async def test_keepalive_callable_value_and_argument_errors() -> None:
    with pytest.raises(TypeError, match="exactly one"):
        flowkit.keepalive(1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="exactly one"):
        flowkit.keepalive(1, "x", heartbeat_factory=lambda: "y")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="interval"):
        flowkit.keepalive(0, "x")


# ---------------------------------------------------------------- timeouts


@pytest.mark.parametrize(
    "make", [flowkit.idle_timeout, flowkit.initial_timeout, flowkit.completion_timeout]
)
async def test_timeouts_contract(make: Any) -> None:
    await check_operator(lambda: make(1000), [1, 2, 3], expected=[1, 2, 3])


async def _run_until_error(
    op: Any, schedule: Sequence[tuple[float, Any]], end: float | None, t0: float
) -> tuple[list[tuple[float, Any]], float | None, BaseException | None]:
    """Run ``op`` in a pipeline; return what came out, when it aborted, the error."""
    got: list[tuple[float, Any]] = []
    aborted_at = None
    try:
        async with flowkit.open_pipeline(timed_source(t0, schedule, end=end), op) as out:
            try:
                async for item in out:
                    got.append((now(t0), item))
            except flowkit.StreamAborted:
                aborted_at = now(t0)
                raise
    except flowkit.StreamTimeout as error:
        return got, aborted_at, error
    return got, aborted_at, None


async def test_idle_timeout_fires_exactly_at_the_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    # gaps of 1.5 and 1.75 pass a 2 s limit; then silence.
    got, aborted_at, error = await _run_until_error(
        flowkit.idle_timeout(2), [(1.5, "a"), (3.25, "b")], None, t0
    )
    assert got == [(1.5, "a"), (3.25, "b")]
    assert aborted_at == 5.25
    assert isinstance(error, flowkit.IdleTimeout)
    assert error.limit == 2
    assert "idle_timeout" in str(error)


async def test_idle_timeout_not_before_the_limit(autojump_clock: trio.testing.MockClock) -> None:
    t0 = trio.current_time()
    schedule = [(1.75, 1), (3.5, 2), (5.25, 3)]
    got, aborted_at, error = await _run_until_error(flowkit.idle_timeout(2), schedule, 7, t0)
    assert (got, aborted_at, error) == ([(1.75, 1), (3.5, 2), (5.25, 3)], None, None)


async def test_idle_timeout_ignores_time_blocked_on_downstream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with flowkit.open_pipeline(range(3), flowkit.idle_timeout(1), flowkit.buffer(1)) as out:
        got = []
        async for item in out:
            got.append(item)
            await trio.sleep(5)  # a slow consumer is not an idle producer
    assert got == [0, 1, 2]


async def test_initial_timeout_times_only_the_first_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    got, _, error = await _run_until_error(
        flowkit.initial_timeout(2), [(1.5, "a"), (10, "b")], 11, t0
    )
    assert (got, error) == ([(1.5, "a"), (10, "b")], None)

    t0 = trio.current_time()
    got, aborted_at, error = await _run_until_error(flowkit.initial_timeout(2), [], None, t0)
    assert (got, aborted_at) == ([], 2)
    assert isinstance(error, flowkit.InitialTimeout)
    assert error.limit == 2
    assert "initial_timeout" in str(error)


async def test_completion_timeout_fires_exactly_at_the_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    schedule = [(float(i), i) for i in range(10)]
    got, aborted_at, error = await _run_until_error(
        flowkit.completion_timeout(3.5), schedule, 10, t0
    )
    assert got == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert aborted_at == 3.5
    assert isinstance(error, flowkit.CompletionTimeout)
    assert error.limit == 3.5

    t0 = trio.current_time()
    got, _, error = await _run_until_error(flowkit.completion_timeout(3.5), schedule[:3], 3.25, t0)
    assert (len(got), error) == (3, None)


async def test_timeout_over_plain_channels_raises_typed_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    up_send, up_receive = trio.open_memory_channel[int](0)
    down_send, down_receive = trio.open_memory_channel[int](0)
    with pytest.raises(flowkit.IdleTimeout):
        await flowkit.idle_timeout(0.5)(up_receive, down_send)
    assert now(t0) == 0.5
    # It owned both ends: closed on the error path too.
    assert up_send.statistics().open_receive_channels == 0
    assert down_receive.statistics().open_send_channels == 0


# ---------------------------------------------------------------- throttle


async def test_throttle_contract() -> None:
    # Real clock on purpose, at a rate that makes it wait a few milliseconds:
    # check_operator's cancellation scenario re-polls receive at checkpoints
    # without ever blocking, so under an autojump clock time would never move.
    await check_operator(
        lambda: flowkit.throttle(1000, burst=1), [1, 2, 3, 4], expected=[1, 2, 3, 4]
    )


async def _emission_times(op: Any, items: Sequence[Any]) -> list[tuple[float, Any]]:
    t0 = trio.current_time()
    async with flowkit.open_pipeline(items, op) as out:
        return await collect(out, t0)


async def test_throttle_default_burst_is_rate(autojump_clock: trio.testing.MockClock) -> None:
    op = flowkit.throttle(2)
    got = await _emission_times(op, "abcde")
    assert got == [(0, "a"), (0, "b"), (0.5, "c"), (1, "d"), (1.5, "e")]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.buffered) == (5, 5, 0, 0)


async def test_throttle_burst_and_per(autojump_clock: trio.testing.MockClock) -> None:
    got = await _emission_times(flowkit.throttle(1, per=0.5, burst=1), "abcd")
    assert got == [(0, "a"), (0.5, "b"), (1, "c"), (1.5, "d")]
    got = await _emission_times(flowkit.throttle(1, burst=3), "abcde")
    assert got == [(0, "a"), (0, "b"), (0, "c"), (1, "d"), (2, "e")]


async def test_throttle_cost_function(autojump_clock: trio.testing.MockClock) -> None:
    got = await _emission_times(flowkit.throttle(4, cost=len), ["aaaa", "b", "cc", "d", ""])
    assert got == [(0, "aaaa"), (0.25, "b"), (0.75, "cc"), (1, "d"), (1, "")]


async def test_throttle_refills_only_up_to_burst(autojump_clock: trio.testing.MockClock) -> None:
    t0 = trio.current_time()
    source = timed_source(t0, [(0, 1), (0, 2), (0, 3), (10, 4), (10, 5), (10, 6)], end=10)
    async with flowkit.open_pipeline(source, flowkit.throttle(1, burst=2)) as out:
        got = await collect(out, t0)
    assert got == [(0, 1), (0, 2), (1, 3), (10, 4), (10, 5), (11, 6)]


async def test_throttle_pays_when_sending_not_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A consumer that stalls does not let the bucket refill behind its back:
    # after the stall, at most ``burst`` items go out at once.
    t0 = trio.current_time()
    send, receive = trio.open_memory_channel[int](0)
    up_send, up_receive = trio.open_memory_channel[int](10)
    for i in range(4):
        up_send.send_nowait(i)
    up_send.close()
    got: list[tuple[float, int]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flowkit.throttle(1, burst=1), up_receive, send)
        async with receive:
            await trio.sleep(5)
            async for item in receive:
                got.append((now(t0), item))
    assert got == [(5, 0), (6, 1), (7, 2), (8, 3)]


async def test_throttle_item_dearer_than_burst_is_a_value_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    op = flowkit.throttle(5, cost=float)
    with pytest.raises(ValueError, match="outside"):
        async with flowkit.open_pipeline([1, 2, 9, 3], op) as out:
            async for _ in out:
                pass
    stats = op.statistics()
    # 1 and 2 went out first; 9 was priced where it waited upstream, so
    # neither it nor 3 was ever taken from the hop.
    assert (stats.items_in, stats.items_out, stats.buffered) == (2, 2, 0)
    with pytest.raises(ValueError, match="burst"):
        flowkit.throttle(1, burst=0)


async def test_a_waiting_throttle_leaves_items_upstream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # While it waits for tokens the throttle holds nothing: the items it
    # cannot afford stay in the hop before it, so buffer(4) really is the
    # only room. It used to take a chunk and hold it, four more items in all.
    produced = 0

    async def source() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(100):
            produced += 1
            yield i

    op = flowkit.throttle(1, burst=1)
    peaks: list[int] = []
    async with flowkit.open_pipeline(source(), flowkit.buffer(4), op) as out:
        for _ in range(5):
            await out.receive()
            await trio.sleep(0.5)  # half-way to the next token
            stats = op.statistics()
            peaks.append(produced - stats.items_out)
            assert stats.buffered == 0
    # Waiting beyond what was sent: 4 in the buffer, 1 in the source's pump.
    assert peaks == [5] * 5


@pytest.mark.parametrize("first", ["latest", "adaptive_batch"])
async def test_what_waits_for_a_throttle_stays_fresh(
    first: str, autojump_clock: trio.testing.MockClock
) -> None:
    # A throttle waiting for time counts as busy downstream: the stage
    # before it keeps replacing (latest) or growing (adaptive_batch) what it
    # offers, instead of one more value going stale inside the throttle.
    async def stamped() -> AsyncIterator[float]:
        for _ in range(1000):
            yield trio.current_time()
            await trio.sleep(0.01)

    stage = flowkit.latest() if first == "latest" else flowkit.adaptive_batch(100)
    ages: list[float] = []
    async with flowkit.open_pipeline(stamped(), stage, flowkit.throttle(2, burst=1)) as out:
        async for value in out:
            stamps = value if isinstance(value, list) else [value]
            ages.extend(trio.current_time() - stamp for stamp in stamps)
    # latest: one token interval (0.5 s) plus the source's 10 ms pacing;
    # a batch's oldest item: two intervals. It used to be 1.0 s and 1.5 s.
    limit = 0.51 if first == "latest" else 1.0
    assert max(ages) <= limit + 1e-9


@settings(max_examples=100, deadline=None)
@given(
    rate=st.integers(1, 8),
    burst=st.integers(1, 5),
    costs=st.lists(st.integers(0, 5), min_size=1, max_size=20),
)
def test_throttle_matches_an_ideal_token_bucket(rate: int, burst: int, costs: list[int]) -> None:
    costs = [min(c, burst) for c in costs]

    async def main() -> list[float]:
        t0 = trio.current_time()
        op = flowkit.throttle(rate, burst=burst, cost=lambda i: costs[i])
        async with flowkit.open_pipeline(range(len(costs)), op) as out:
            return [now(t0) async for _ in out]

    times = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # The ideal bucket, item by item: wait exactly until the cost is covered.
    tokens, clock, expected = float(burst), 0.0, []
    for c in costs:
        if tokens < c:
            clock += (c - tokens) / rate
            tokens = float(c)
        tokens -= c
        expected.append(clock)
    assert times == pytest.approx(expected, abs=1e-9)
