"""merge, broadcast (+ branch), balance: contract, completeness, isolation."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator


def ended_channel() -> trio.MemoryReceiveChannel[Any]:
    send, receive = trio.open_memory_channel[Any](0)
    send.close()
    return receive


async def paced(items: list[Any], every: float) -> AsyncIterator[Any]:
    for item in items:
        await trio.sleep(every)
        yield item


# ---------------------------------------------------------------- merge


async def test_merge_contract() -> None:
    await check_operator(lambda: flowkit.merge(), [1, 2, 3], expected=[1, 2, 3])
    await check_operator(lambda: flowkit.merge(ended_channel()), [1, 2, 3], expected=[1, 2, 3])


async def test_merge_ends_only_when_all_inputs_end_and_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    send, receive = trio.open_memory_channel[str](0)

    async def produce() -> None:
        async with send:
            for i in range(3):
                await trio.sleep(2)
                await send.send(f"c{i}")

    op = flowkit.merge(receive, paced(["g0", "g1"], 1))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        async with flowkit.open_pipeline(["s0", "s1", "s2"], op) as out:
            got = [item async for item in out]
            ended_at = trio.current_time() - t0
    assert ended_at == 6  # the slowest input's end, not the first one's
    assert sorted(got) == sorted(["s0", "s1", "s2", "c0", "c1", "c2", "g0", "g1"])
    for prefix in "scg":
        mine = [x for x in got if x[0] == prefix]
        assert mine == sorted(mine)  # order is kept per input
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.buffered) == (8, 8, 0)


async def test_merge_as_a_pipeline_source_of_channels() -> None:
    channels = [trio.open_memory_channel[int](10) for _ in range(3)]
    for i, (send, _) in enumerate(channels):
        for j in range(3):
            send.send_nowait(10 * i + j)
        send.close()
    async with flowkit.open_pipeline((), flowkit.merge(*(r for _, r in channels))) as out:
        got = [x async for x in out]
    assert sorted(got) == [0, 1, 2, 10, 11, 12, 20, 21, 22]


async def test_merge_error_in_one_input_propagates() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise KeyError("input crashed")

    send, receive = trio.open_memory_channel[int](0)
    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(receive, flowkit.merge(broken())) as out:
            async for _ in out:
                pass
    assert send.statistics().open_receive_channels == 0  # owned and closed


async def test_merge_closed_downstream_closes_every_input() -> None:
    sends = []
    receives = []
    for _ in range(3):
        send, receive = trio.open_memory_channel[int](0)
        sends.append(send)
        receives.append(receive)
    broken = 0

    async def produce(send: trio.MemorySendChannel[int]) -> None:
        nonlocal broken
        try:
            while True:
                await send.send(1)
        except trio.BrokenResourceError:
            broken += 1

    async with trio.open_nursery() as nursery:
        for send in sends:
            nursery.start_soon(produce, send)
        async with flowkit.open_pipeline(receives[0], flowkit.merge(*receives[1:])) as out:
            await out.receive()
    assert broken == 3


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), max_size=8), min_size=1, max_size=4))
def test_merge_property_nothing_lost_order_per_input(gaps: list[list[int]]) -> None:
    inputs = [[(i, j) for j in range(len(g))] for i, g in enumerate(gaps)]

    async def source(i: int) -> AsyncIterator[tuple[int, int]]:
        for j, gap in enumerate(gaps[i]):
            await trio.sleep(gap)
            yield (i, j)

    async def main() -> list[tuple[int, int]]:
        op = flowkit.merge(*(source(i) for i in range(1, len(gaps))))
        async with flowkit.open_pipeline(source(0), op) as out:
            return [x async for x in out]

    got = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert Counter(got) == Counter(x for each in inputs for x in each)
    for i, each in enumerate(inputs):
        assert [x for x in got if x[0] == i] == each


# ---------------------------------------------------------------- broadcast


async def test_broadcast_contract() -> None:
    await check_operator(lambda: flowkit.broadcast(), [1, 2, 3], expected=[1, 2, 3])
    await check_operator(
        lambda: flowkit.broadcast(flowkit.open_channel(math.inf)[0]), [1, 2, 3], expected=[1, 2, 3]
    )
    await check_operator(
        lambda: flowkit.broadcast(flowkit.branch(flowkit.open_channel(math.inf)[0], max_items=2)),
        [1, 2, 3, 4, 5, 6],
        expected=[1, 2, 3, 4, 5, 6],
    )


async def drain(receive: trio.abc.ReceiveChannel[Any], into: list[Any], pause: float = 0) -> None:
    async with receive:
        async for item in receive:
            into.append(item)
            if pause:
                await trio.sleep(pause)


async def test_broadcast_every_lossless_branch_gets_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    a_send, a_receive = trio.open_memory_channel[int](0)
    b_send: flowkit.FlowSendChannel[int]
    b_receive: flowkit.FlowReceiveChannel[int]
    b_send, b_receive = flowkit.open_channel(2)
    a: list[int] = []
    b: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, a_receive, a, 1.0)  # the slowest governs
        nursery.start_soon(drain, b_receive, b)
        op = flowkit.broadcast(a_send, b_send)
        async with flowkit.open_pipeline(range(5), op) as out:
            main = [x async for x in out]
    assert main == a == b == [0, 1, 2, 3, 4]
    assert trio.current_time() - t0 >= 4  # paced by the slow lossless branch
    assert op.statistics().items_out == 5


async def test_broadcast_drop_oldest_branch_does_not_stall_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    t0 = trio.current_time()
    slow_send, slow_receive = trio.open_memory_channel[int](0)
    dropped: list[int] = []
    slow_branch = flowkit.branch(slow_send, max_items=2, on_drop=dropped.append)
    slow: list[int] = []
    main: list[tuple[float, int]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, slow_receive, slow, 10.0)
        async with flowkit.open_pipeline(range(10), flowkit.broadcast(slow_branch)) as out:
            async for x in out:
                main.append((trio.current_time() - t0, x))
    assert [x for _, x in main] == list(range(10))
    assert all(at == 0 for at, _ in main)  # never waited for the slow branch
    # The queue keeps the newest two (plus at most one item already being
    # handed over); everything else was evicted oldest-first.
    assert slow[-2:] == [8, 9]
    assert len(slow) <= 3
    assert sorted(slow + dropped) == list(range(10))
    assert dropped == sorted(dropped)
    stats = slow_branch.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.buffered) == (
        10,
        len(slow),
        len(dropped),
        0,
    )


async def test_broadcast_drop_newest_branch(autojump_clock: trio.testing.MockClock) -> None:
    slow_send, slow_receive = trio.open_memory_channel[int](0)
    branch = flowkit.branch(slow_send, max_items=2, overflow="drop_newest")
    slow: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, slow_receive, slow, 10.0)
        async with flowkit.open_pipeline(range(10), flowkit.broadcast(branch)) as out:
            assert [x async for x in out] == list(range(10))
    assert slow == [0, 1]  # the whole range arrives as one chunk: 2..9 rejected
    assert branch.statistics().dropped == 8


async def test_broadcast_closed_branch_is_detached_others_continue() -> None:
    quitter_send, quitter_receive = trio.open_memory_channel[int](0)
    queued_send, queued_receive = trio.open_memory_channel[int](0)
    branch = flowkit.branch(queued_send, max_items=100)
    seen_by_quitter: list[int] = []

    async def quit_after_two() -> None:
        async with quitter_receive:
            seen_by_quitter.append(await quitter_receive.receive())
            seen_by_quitter.append(await quitter_receive.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(quit_after_two)
        queued_receive.close()  # this branch is gone from the start
        op = flowkit.broadcast(quitter_send, branch)
        async with flowkit.open_pipeline(range(100), op) as out:
            assert [x async for x in out] == list(range(100))
    assert seen_by_quitter == [0, 1]
    assert branch.detached
    stats = branch.statistics()
    assert stats.items_in == stats.items_out + stats.dropped + stats.buffered


async def test_broadcast_returns_when_everyone_left() -> None:
    up_send, up_receive = trio.open_memory_channel[int](0)
    down_send, down_receive = trio.open_memory_channel[int](0)
    side_send, side_receive = trio.open_memory_channel[int](0)
    down_receive.close()
    side_receive.close()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flowkit.broadcast(side_send), up_receive, down_send)
        with pytest.raises(trio.BrokenResourceError):
            async with up_send:
                for i in range(10):
                    await up_send.send(i)


async def test_broadcast_flowkit_branch_sees_abort_not_a_clean_end() -> None:
    async def crashing() -> AsyncIterator[int]:
        yield 1
        raise KeyError("boom")

    side_send: flowkit.FlowSendChannel[int]
    side_receive: flowkit.FlowReceiveChannel[int]
    side_send, side_receive = flowkit.open_channel(10)
    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(crashing(), flowkit.broadcast(side_send)) as out:
            async for _ in out:
                pass
    # Whatever reached the branch first, its end is an abort, not EndOfChannel.
    with pytest.raises(flowkit.StreamAborted):
        while True:
            assert side_receive.receive_nowait() == 1


def test_branch_is_validated_and_single_use() -> None:
    send, _ = flowkit.open_channel(1)
    with pytest.raises(ValueError, match="max_items"):
        flowkit.branch(send, max_items=0)
    with pytest.raises(ValueError, match="overflow"):
        flowkit.branch(send, max_items=1, overflow="nope")  # type: ignore[arg-type]
    branch = flowkit.branch(send, max_items=1)
    flowkit.broadcast(branch)
    with pytest.raises(RuntimeError, match="already"):
        flowkit.broadcast(branch)


# ---------------------------------------------------------------- balance


async def test_balance_contract() -> None:
    await check_operator(
        lambda: flowkit.balance(flowkit.map(lambda x: x), flowkit.map(lambda x: x)),
        list(range(10)),
        flatten=sorted,
    )


def recording_worker(seen: list[Any], pause: float) -> Any:
    async def work(x: Any) -> Any:
        seen.append(x)
        await trio.sleep(pause)
        return x

    return flowkit.map(work)


async def test_balance_each_item_to_exactly_one_worker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fast: list[int] = []
    slow: list[int] = []
    op = flowkit.balance(recording_worker(fast, 1), recording_worker(slow, 5))
    async with flowkit.open_pipeline(range(30), op) as out:
        got = [x async for x in out]
    assert sorted(got) == list(range(30))
    assert sorted(fast + slow) == list(range(30))  # no duplicates, nothing lost
    assert len(fast) > len(slow) > 0  # whichever is ready takes the next item
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.emitted, stats.buffered) == (30, 30, 30, 0)


async def test_balance_worker_error_propagates() -> None:
    def explode(x: int) -> int:
        if x == 5:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(
            range(100), flowkit.balance(flowkit.map(explode), flowkit.map(explode))
        ) as out:
            async for _ in out:
                pass


async def test_balance_closed_downstream_tears_down() -> None:
    up_send, up_receive = trio.open_memory_channel[int](0)
    down_send, down_receive = trio.open_memory_channel[str](0)

    async def produce() -> None:
        with pytest.raises(trio.BrokenResourceError):
            async with up_send:
                while True:
                    await up_send.send(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        nursery.start_soon(
            flowkit.balance(flowkit.map(str), flowkit.map(str)), up_receive, down_send
        )
        async with down_receive:
            assert await down_receive.receive() == "1"


def test_balance_needs_workers() -> None:
    with pytest.raises(ValueError, match="worker"):
        flowkit.balance()


@settings(max_examples=100, deadline=None)
@given(
    items=st.lists(st.integers(), max_size=40),
    pauses=st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=1, max_size=4),
)
def test_balance_property_multiset_preserved(items: list[int], pauses: list[float]) -> None:
    seen: list[list[int]] = [[] for _ in pauses]

    async def main() -> list[int]:
        workers = [recording_worker(seen[i], p) for i, p in enumerate(pauses)]
        async with flowkit.open_pipeline(items, flowkit.balance(*workers)) as out:
            return [x async for x in out]

    got = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert Counter(got) == Counter(items)
    assert Counter(x for each in seen for x in each) == Counter(items)
