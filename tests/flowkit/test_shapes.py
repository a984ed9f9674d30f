"""take / take_while / take_until / skip / skip_while / distinct."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator

from . import _scenario

# -- the contract --------------------------------------------------------------


async def test_contract_when_nothing_is_cut(autojump_clock: trio.testing.MockClock) -> None:
    for make in [
        lambda: flowkit.take(10),
        lambda: flowkit.take_while(lambda x: x < 10),
        lambda: flowkit.take_until(trio.Event()),
        lambda: flowkit.skip(0),
        lambda: flowkit.skip_while(lambda x: False),
        lambda: flowkit.distinct(window=4),
    ]:
        await check_operator(make, [1, 2, 3, 4])


async def test_contract_when_cut_short(autojump_clock: trio.testing.MockClock) -> None:
    # An operator that ends early reads fewer than all inputs (no "statistics"
    # step: items_in < len(inputs)) and ends cleanly even if upstream would
    # have crashed later (no "crash" step): that is its semantics.
    cut = {"statistics", "crash"}
    await check_operator(lambda: flowkit.take(2), [1, 2, 3, 4], expected=[1, 2], skip=cut)
    await check_operator(
        lambda: flowkit.take_while(lambda x: x < 3), [1, 2, 3, 4], expected=[1, 2], skip=cut
    )
    await check_operator(
        lambda: flowkit.take_while(lambda x: x < 3, inclusive=True),
        [1, 2, 3, 4],
        expected=[1, 2, 3],
        skip=cut,
    )


async def test_contract_when_items_are_removed(autojump_clock: trio.testing.MockClock) -> None:
    await check_operator(lambda: flowkit.skip(2), [1, 2, 3, 4], expected=[3, 4])
    await check_operator(lambda: flowkit.skip_while(lambda x: x < 3), [1, 2, 3, 1], expected=[3, 1])
    await check_operator(
        lambda: flowkit.distinct(window=2), [1, 1, 2, 1, 3, 4, 1], expected=[1, 2, 3, 4, 1]
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: flowkit.take(-1),
        lambda: flowkit.take(True),
        lambda: flowkit.skip(1.5),
        lambda: flowkit.distinct(window=0),
    ],
)
def test_bad_sizes_are_refused(make: Callable[[], Any]) -> None:
    with pytest.raises(ValueError, match=r"must be an int >= [01]"):
        make()


# -- take ----------------------------------------------------------------------


async def test_take_stops_an_endless_source() -> None:
    op = flowkit.take(3)
    async with flowkit.open_pipeline(itertools.count(), flowkit.map(str), op) as out:
        assert [x async for x in out] == ["0", "1", "2"]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out) == (3, 3)


async def test_take_reads_no_more_than_it_needs_and_closes_upstream() -> None:
    send, receive = trio.open_memory_channel[int](10)
    for x in range(5):
        send.send_nowait(x)
    out_send, out_receive = trio.open_memory_channel[int](10)
    watcher = receive.clone()  # sees what take left in the channel
    await flowkit.take(2)(receive, out_send)
    assert [out_receive.receive_nowait() for _ in range(2)] == [0, 1]
    with pytest.raises(trio.EndOfChannel):
        out_receive.receive_nowait()
    assert [watcher.receive_nowait() for _ in range(3)] == [2, 3, 4]  # never read
    watcher.close()
    with pytest.raises(trio.BrokenResourceError):
        send.send_nowait(9)  # it closed its receive end


async def test_take_zero_ends_at_once() -> None:
    async with flowkit.open_pipeline(itertools.count(), flowkit.take(0)) as out:
        assert [x async for x in out] == []


async def test_take_passes_an_upstream_crash_before_the_count() -> None:
    async def crashing() -> Any:
        yield 1
        raise KeyError("source")

    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(crashing(), flowkit.take(5)) as out:
            [x async for x in out]


# -- take_while / take_until ---------------------------------------------------


async def test_take_while_leaves_the_rest_in_the_hop_and_counts_the_stopper() -> None:
    op = flowkit.take_while(lambda x: x < 5)
    async with flowkit.open_pipeline(range(100), flowkit.buffer(64), op) as out:
        assert [x async for x in out] == [0, 1, 2, 3, 4]
    stats = op.statistics()
    # only what it judged left the hop: five kept, one stopper
    assert (stats.items_in, stats.items_out, stats.filtered, stats.dropped) == (6, 5, 1, 0)


async def test_take_while_over_a_memory_channel_counts_unjudged_items_as_dropped() -> None:
    send, receive = trio.open_memory_channel[int](10)
    for x in range(6):
        send.send_nowait(x)
    op = flowkit.take_while(lambda x: x < 2)
    out_send, out_receive = trio.open_memory_channel[int](10)
    await op(receive, out_send)
    stats = op.statistics()
    assert [out_receive.receive_nowait() for _ in range(2)] == [0, 1]
    assert (stats.items_in, stats.items_out, stats.filtered, stats.dropped) == (6, 2, 1, 3)


async def test_take_while_predicate_error_follows_the_items_before_it() -> None:
    def small(x: int) -> bool:
        if x == 3:
            raise LookupError(x)
        return True

    seen: list[int] = []
    with pytest.raises(LookupError):
        async with flowkit.open_pipeline(
            range(10), flowkit.take_while(small), drain_on_error=True
        ) as out:
            async for x in out:
                seen.append(x)
    assert seen == [0, 1, 2]


async def test_take_until_ends_when_the_event_is_set(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stop = trio.Event()

    async def ticks() -> Any:
        for n in itertools.count():
            yield n
            await trio.sleep(1)

    async def set_later() -> None:
        await trio.sleep(3.5)
        stop.set()

    op = flowkit.take_until(stop)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(set_later)
        async with flowkit.open_pipeline(ticks(), op) as out:
            got = [(trio.current_time(), x) async for x in out]
    assert got == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert trio.current_time() == 3.5  # ended the moment the event was set


async def test_take_until_delivers_what_it_took_even_if_the_event_comes_during_the_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stop = trio.Event()
    send, receive = trio.open_memory_channel[int](0)
    out_send, out_receive = trio.open_memory_channel[int](0)
    op = flowkit.take_until(stop)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, receive, out_send)
        await send.send(1)  # taken; its send downstream now waits for us
        await trio.testing.wait_all_tasks_blocked()
        stop.set()
        await trio.sleep(1)
        assert await out_receive.receive() == 1
        with pytest.raises(trio.EndOfChannel):
            await out_receive.receive()
    with pytest.raises(trio.BrokenResourceError):
        await send.send(2)
    assert op.statistics().items_out == 1


async def test_take_until_an_event_already_set_reads_nothing() -> None:
    stop = trio.Event()
    stop.set()
    op = flowkit.take_until(stop)
    async with flowkit.open_pipeline(range(5), op) as out:
        assert [x async for x in out] == []
    assert op.statistics().items_in == 0


# -- skip / skip_while / distinct ----------------------------------------------


async def test_skip_and_skip_while_are_fused_and_count_filtered() -> None:
    skip = flowkit.skip(301)  # spans chunks
    skip_while = flowkit.skip_while(lambda x: x % 7 != 6)
    async with flowkit.open_pipeline(range(1000), skip, skip_while) as out:
        got = [x async for x in out]
    assert got == list(range(307, 1000))
    assert (skip.statistics().filtered, skip_while.statistics().filtered) == (301, 6)


async def test_distinct_window_one_drops_consecutive_duplicates_only() -> None:
    async with flowkit.open_pipeline("aabbbaac", flowkit.distinct(window=1)) as out:
        assert "".join([x async for x in out]) == "abac"


async def test_distinct_by_key_remembers_a_repeating_key() -> None:
    op = flowkit.distinct(lambda event: event["id"], window=2)
    events = [{"id": i % 3, "n": n} for n, i in enumerate([0, 1, 0, 2, 0, 1, 0])]
    async with flowkit.open_pipeline(events, op) as out:
        got = [e["n"] async for e in out]
    # 0 keeps being seen, so it stays remembered; 1 is forgotten after 2 and 0
    assert got == [0, 1, 3, 5]
    assert op.statistics().filtered == 3


async def test_distinct_unhashable_key_error_propagates() -> None:
    with pytest.raises(TypeError):
        async with flowkit.open_pipeline([[1]], flowkit.distinct(window=2)) as out:
            [x async for x in out]


# -- reference models ----------------------------------------------------------


def _distinct_model(items: list[int], key: Callable[[int], int], window: int) -> list[int]:
    recent: list[int] = []  # most recent last
    out = []
    for item in items:
        k = key(item)
        if k in recent:
            recent.remove(k)
        else:
            out.append(item)
        recent.append(k)
        del recent[:-window]
    return out


small = st.lists(st.integers(0, 6), max_size=30)


@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, items=small, n=st.integers(0, 35))
def test_take_and_skip_match_slicing(plan: _scenario.Plan, items: list[int], n: int) -> None:
    taken = _scenario.run(lambda: flowkit.take(n), items, plan, bound=None)
    assert taken.outputs == items[:n]
    skipped = _scenario.run(lambda: flowkit.skip(n), items, plan, bound=None)
    assert skipped.outputs == items[n:]
    assert skipped.final.filtered == min(n, len(items))


@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, items=small, limit=st.integers(0, 6), inclusive=st.booleans())
def test_take_while_and_skip_while_match_itertools(
    plan: _scenario.Plan, items: list[int], limit: int, inclusive: bool
) -> None:
    def below(x: int) -> bool:
        return x < limit

    taken = _scenario.run(
        lambda: flowkit.take_while(below, inclusive=inclusive), items, plan, bound=None
    )
    expected = list(itertools.takewhile(below, items))
    if inclusive and len(expected) < len(items):
        expected.append(items[len(expected)])
    assert taken.outputs == expected
    skipped = _scenario.run(lambda: flowkit.skip_while(below), items, plan, bound=None)
    assert skipped.outputs == list(itertools.dropwhile(below, items))


@settings(max_examples=100, deadline=None)
@given(plan=_scenario.plans, items=small, window=st.integers(1, 4), modulo=st.integers(1, 7))
def test_distinct_matches_the_model(
    plan: _scenario.Plan, items: list[int], window: int, modulo: int
) -> None:
    def key(x: int) -> int:
        return x % modulo

    outcome = _scenario.run(lambda: flowkit.distinct(key, window=window), items, plan, bound=0)
    assert outcome.outputs == _distinct_model(items, key, window)


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers(0, 9), max_size=700), n=st.integers(0, 700), w=st.integers(1, 5))
def test_fused_shapes_in_a_pipeline_match_the_model(items: list[int], n: int, w: int) -> None:
    async def main() -> list[int]:
        stages = [flowkit.skip(n // 3), flowkit.distinct(window=w), flowkit.take(n)]
        async with flowkit.open_pipeline(items, *stages) as out:
            return [x async for x in out]

    assert trio.run(main) == _distinct_model(items[n // 3 :], lambda x: x, w)[:n]


async def test_a_fused_key_failure_delivers_the_items_before_it() -> None:
    def by_id(event: dict[str, int]) -> int:
        return event["id"]  # KeyError on an event without one

    events = [{"id": 1}, {"id": 1}, {"id": 2}, {}, {"id": 3}]
    seen: list[dict[str, int]] = []
    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(
            events, flowkit.skip(0), flowkit.distinct(by_id, window=4), drain_on_error=True
        ) as out:
            async for event in out:
                seen.append(event)
    assert seen == [{"id": 1}, {"id": 2}]


@settings(max_examples=100, deadline=None)
@given(gaps=st.lists(st.integers(0, 3), max_size=20), stop_at=st.integers(0, 40))
def test_take_until_matches_the_model(gaps: list[int], stop_at: int) -> None:
    # Items at whole seconds, the event at half past: no ties.
    times = list(itertools.accumulate(gaps))

    async def main() -> list[int]:
        stop = trio.Event()

        async def items() -> Any:
            for index, gap in enumerate(gaps):
                await trio.sleep(gap)
                yield index

        async def set_later() -> None:
            await trio.sleep(stop_at + 0.5)
            stop.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(set_later)
            async with flowkit.open_pipeline(items(), flowkit.take_until(stop)) as out:
                got = [x async for x in out]
            nursery.cancel_scope.cancel()
        return got

    got = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert got == [index for index, at in enumerate(times) if at < stop_at + 0.5]
