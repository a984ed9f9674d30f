"""AckTracker: a source's items are settled only once the pipeline is done with them.

Every test checks the promise at the moment of settling (a tracker whose
``check`` compares what it just settled with what the sink committed or the
pipeline dropped), not afterwards, so an early acknowledgement cannot hide
behind a later commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import trio

import flowkit
from flowkit import AckTracker, ContractViolation, OperatorStatistics


class Sink:
    """A committing sink: an item counts as ``buffered`` until its commit (a round trip)."""

    def __init__(self, flatten: Callable[[Any], Sequence[Any]] = lambda item: [item]) -> None:
        self.committed: set[Any] = set()
        self.flatten = flatten
        self.items_in = 0
        self.held = 0

    def statistics(self) -> OperatorStatistics:
        return OperatorStatistics(
            name="sink",
            items_in=self.items_in,
            items_out=self.items_in - self.held,
            buffered=self.held,
        )

    async def __call__(
        self,
        receive: trio.abc.ReceiveChannel[Any],
        send: trio.abc.SendChannel[Any],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with receive, send:
            task_status.started()
            async for item in receive:
                self.items_in += 1
                self.held += 1
                await trio.sleep(0.001)  # the commit's round trip
                self.committed.update(self.flatten(item))
                self.held -= 1


class Checked(AckTracker[int]):
    """Asserts, at every settle point, that each settled item is done."""

    def __init__(self, done: Callable[[], set[Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.done = done
        self.acked: list[int] = []

    def check(self) -> None:
        before = len(self._settled)
        super().check()
        fresh = self._settled[before:]
        early = set(fresh) - self.done()
        assert not early, f"settled before done: {sorted(early)[:10]}"
        self.acked += fresh


async def numbers(tracker: AckTracker[int], n: int) -> AsyncIterator[int]:
    for i in range(n):
        await tracker.wait_for_room()
        tracker.emitted(i)
        yield i


def everything_done(sink: Sink, dropped: set[Any]) -> Callable[[], set[Any]]:
    return lambda: sink.committed | dropped


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda rejected: [flowkit.map(lambda x: x)], id="map"),
        pytest.param(
            lambda rejected: [flowkit.filter(lambda x: x % 3 or rejected.add(x))], id="filter"
        ),
        pytest.param(
            lambda rejected: [flowkit.concurrent_map(_slow_identity, max_concurrent=4)],
            id="concurrent_map",
        ),
        pytest.param(lambda rejected: [flowkit.buffer(32)], id="buffer"),
    ],
)
async def test_items_are_settled_only_after_the_sink_committed_them(
    make: Callable[[set[int]], list[Any]], autojump_clock: object
) -> None:
    rejected: set[int] = set()
    sink = Sink()
    tracker = Checked(everything_done(sink, rejected), max_unsettled=50)
    async with flowkit.open_pipeline(
        numbers(tracker, 500), *make(rejected), sink, acks=tracker
    ) as out:
        assert [x async for x in out] == []
    assert sorted(tracker.acked) == list(range(500))
    assert tracker.statistics().unsettled == 0
    assert tracker.statistics().settle_points > 1  # settled along the way, not only at the end


async def _slow_identity(x: int) -> int:
    await trio.sleep(0.0001 * (x % 7))
    return x


async def test_a_batch_settles_its_items_when_the_batch_is_committed(
    autojump_clock: object,
) -> None:
    sink = Sink(flatten=list)
    tracker = Checked(everything_done(sink, set()), max_unsettled=40)
    async with flowkit.open_pipeline(
        numbers(tracker, 300), flowkit.batch(max_size=16, max_delay=0.5), sink, acks=tracker
    ) as out:
        assert [x async for x in out] == []
    assert sorted(tracker.acked) == list(range(300))


async def test_a_count_window_that_holds_items_across_the_bound_does_not_deadlock(
    autojump_clock: object,
) -> None:
    sink = Sink(flatten=lambda window: list(window.items))
    tracker = Checked(everything_done(sink, set()), max_unsettled=10)
    async with flowkit.open_pipeline(
        numbers(tracker, 100), flowkit.count_window(7), sink, acks=tracker
    ) as out:
        assert [x async for x in out] == []
    assert sorted(tracker.acked) == list(range(100))
    assert tracker.statistics().extensions > 0


async def test_items_a_lossy_stage_drops_are_settled_too(autojump_clock: object) -> None:
    dropped: set[int] = set()
    sink = Sink()
    tracker = Checked(everything_done(sink, dropped), max_unsettled=64)
    async with flowkit.open_pipeline(
        numbers(tracker, 400), flowkit.drop_oldest(4, on_drop=dropped.add), sink, acks=tracker
    ) as out:
        assert [x async for x in out] == []
    assert dropped  # the slow sink made it drop
    assert sorted(tracker.acked) == list(range(400))


async def test_a_pipeline_left_early_settles_nothing_it_still_held(autojump_clock: object) -> None:
    sink = Sink()
    tracker = Checked(everything_done(sink, set()), max_unsettled=1000)
    async with flowkit.open_pipeline(numbers(tracker, 10_000), sink, acks=tracker) as out:
        with trio.move_on_after(0.05):
            [x async for x in out]
    assert tracker.statistics().unsettled > 0  # in flight when it was left: redelivered later
    assert set(tracker.acked) <= sink.committed


async def test_a_source_with_an_acks_attribute_binds_itself(autojump_clock: object) -> None:
    class Source:
        def __init__(self) -> None:
            self.acks = Checked(lambda: sink.committed, max_unsettled=8)

        def __aiter__(self) -> AsyncIterator[int]:
            return numbers(self.acks, 50)

    sink = Sink()
    source = Source()
    async with flowkit.open_pipeline(source, sink) as out:
        assert [x async for x in out] == []
    assert sorted(source.acks.acked) == list(range(50))


async def test_a_stage_without_statistics_is_refused() -> None:
    async def opaque(
        receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with receive, send:
            task_status.started()
            async for item in receive:
                await send.send(item)

    tracker: AckTracker[int] = AckTracker()
    with pytest.raises(ContractViolation, match="keeps no statistics"):
        async with flowkit.open_pipeline(numbers(tracker, 3), opaque, acks=tracker):
            pass  # pragma: no cover


async def test_group_by_is_refused() -> None:
    tracker: AckTracker[int] = AckTracker()
    with pytest.raises(ContractViolation, match="do not count"):
        async with flowkit.open_pipeline(
            numbers(tracker, 3), flowkit.group_by(lambda x: x % 2, lambda key: []), acks=tracker
        ):
            pass  # pragma: no cover


async def test_fan_out_settles_when_every_branch_committed(autojump_clock: object) -> None:
    main_sink, side_sink = Sink(), Sink()
    tracker = Checked(lambda: main_sink.committed & side_sink.committed, max_unsettled=30)
    send, receive = flowkit.open_channel(8)
    async with trio.open_nursery() as nursery:

        async def side() -> None:
            async with flowkit.open_pipeline(receive, side_sink, acks=tracker) as out:
                assert [x async for x in out] == []

        nursery.start_soon(side)
        async with flowkit.open_pipeline(
            numbers(tracker, 200), flowkit.broadcast(send), main_sink, acks=tracker
        ) as out:
            assert [x async for x in out] == []
    assert sorted(tracker.acked) == list(range(200))


async def test_a_broadcast_branch_nobody_bound_is_detected(autojump_clock: object) -> None:
    send, receive = trio.open_memory_channel[int](100)
    tracker: AckTracker[int] = AckTracker(max_unsettled=5)
    with pytest.raises(ContractViolation, match="broadcast branch"):
        async with flowkit.open_pipeline(
            numbers(tracker, 20), flowkit.broadcast(send), Sink(), acks=tracker
        ) as out:
            [x async for x in out]
    receive.close()


def test_an_acked_source_is_refused_by_start_pipeline() -> None:
    class Source:
        acks: AckTracker[int] = AckTracker()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            with pytest.raises(TypeError, match="open_pipeline"):
                flowkit.start_pipeline(nursery, Source())

    trio.run(main)


class HidesWhatItHolds:
    """Keeps its last item until the end but says ``buffered == 0``: it would ack early."""

    def __init__(self) -> None:
        self.items_in = 0

    def statistics(self) -> OperatorStatistics:
        return OperatorStatistics(name="hides", items_in=self.items_in, items_out=self.items_in)

    async def __call__(
        self, receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with receive, send:
            task_status.started()
            last = None
            try:
                async for item in receive:
                    self.items_in += 1
                    if last is not None:
                        await send.send(last)
                    last = item
                if last is not None:
                    await send.send(last)
            except trio.BrokenResourceError:
                return


async def test_check_operator_catches_an_operator_that_hides_what_it_holds() -> None:
    from flowkit.testing import check_operator

    with pytest.raises(ContractViolation, match=r"buffered counts every item held.*emitted \[3\]"):
        await check_operator(HidesWhatItHolds, [1, 2, 3])
    await check_operator(HidesWhatItHolds, [1, 2, 3], skip={"acks"})


async def test_an_acked_source_read_by_a_stage_rather_than_the_pipeline_is_detected() -> None:
    tracker: AckTracker[int] = AckTracker()
    with pytest.raises(ContractViolation, match="must be the source of an open_pipeline"):
        async with flowkit.open_pipeline([], flowkit.merge(numbers(tracker, 3))) as out:
            [x async for x in out]
