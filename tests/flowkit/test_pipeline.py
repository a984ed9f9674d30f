"""open_pipeline / start_pipeline: sources, fusion, errors, statistics."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit


async def _collect(source: Any, *stages: Any) -> list[Any]:
    async with flowkit.open_pipeline(source, *stages) as out:
        return [item async for item in out]


async def test_sources_sync_async_and_channel() -> None:
    async def agen() -> AsyncIterator[int]:
        for i in range(5):
            yield i

    send, receive = trio.open_memory_channel[int](10)
    for i in range(5):
        send.send_nowait(i)
    send.close()
    double = flowkit.map(lambda x: x * 2)
    assert await _collect(range(5), double) == [0, 2, 4, 6, 8]
    assert await _collect(agen(), flowkit.map(lambda x: x * 2)) == [0, 2, 4, 6, 8]
    assert await _collect(receive, flowkit.map(lambda x: x * 2)) == [0, 2, 4, 6, 8]
    assert await _collect([]) == []


async def test_user_operator_is_a_plain_async_function() -> None:
    async def pairs(
        receive: trio.abc.ReceiveChannel[int],
        send: trio.abc.SendChannel[tuple[int, int]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with receive, send:
            task_status.started()
            previous = None
            async for item in receive:
                if previous is not None:
                    await send.send((previous, item))
                previous = item

    assert await _collect(range(4), flowkit.map(lambda x: x + 1), pairs) == [(1, 2), (2, 3), (3, 4)]


async def test_stage_error_surfaces_with_original_type_and_consumer_sees_abort() -> None:
    async def crash(receive: Any, send: Any, **_: Any) -> None:
        async with receive, send:
            await send.send(await receive.receive())
            raise LookupError("stage failed")

    seen: list[Any] = []
    aborted = False
    with pytest.raises(LookupError, match="stage failed"):
        async with flowkit.open_pipeline(range(10), crash, flowkit.map(str)) as out:
            try:
                async for item in out:
                    seen.append(item)
            except flowkit.StreamAborted as error:
                aborted = isinstance(error.__cause__, LookupError)
                raise
    assert seen == ["0"]
    assert aborted


async def test_source_error_surfaces() -> None:
    async def agen() -> AsyncIterator[int]:
        yield 1
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        await _collect(agen(), flowkit.buffer(4))


async def test_leaving_the_block_early_stops_an_infinite_pipeline() -> None:
    closed = trio.Event()

    async def forever() -> AsyncIterator[int]:
        try:
            for i in itertools.count():
                yield i
        finally:
            closed.set()

    async with flowkit.open_pipeline(forever(), flowkit.buffer(8)) as out:
        async for item in out:
            if item == 100:
                break
    assert closed.is_set()


async def test_body_error_propagates_unwrapped() -> None:
    with pytest.raises(ZeroDivisionError):
        async with flowkit.open_pipeline(range(3)) as out:
            await out.receive()
            1 / 0  # noqa: B018


async def test_start_pipeline_in_callers_nursery_and_statistics() -> None:
    stages = (flowkit.map(lambda x: x + 1), flowkit.buffer(2), flowkit.filter(lambda x: x % 2))
    async with trio.open_nursery() as nursery:
        pipeline = flowkit.start_pipeline(nursery, range(10), *stages)
        assert [x async for x in pipeline] == [1, 3, 5, 7, 9]
    names = [s.name for s in pipeline.statistics()]
    assert names == ["map", "buffer", "filter"]
    buffer_stats = pipeline.statistics()[1]
    assert buffer_stats.items_in == buffer_stats.items_out == 10
    assert buffer_stats.buffered_peak <= 2


async def test_buffer_backpressures_a_fast_source(autojump_clock: trio.abc.Clock) -> None:
    produced = 0

    async def counting() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(100):
            produced += 1
            yield i

    async with flowkit.open_pipeline(counting(), flowkit.buffer(5), hop_items=1) as out:
        assert await out.receive() == 0
        await trio.testing.wait_all_tasks_blocked()
        # 5 buffered + 1 taken + 1 in the source's hand + at most 1 in the pump
        assert produced <= 8


async def test_rejects_non_callable_stage() -> None:
    with pytest.raises(TypeError, match="not callable"):
        async with flowkit.open_pipeline(range(3), 42):  # type: ignore[arg-type]
            pass


async def test_receive_some_and_receive_on_pipeline() -> None:
    async with flowkit.open_pipeline(range(10), flowkit.map(lambda x: x)) as out:
        first = await out.receive()
        rest = await out.receive_some(100)
        assert [first, *rest] == list(range(10))
        with pytest.raises(trio.EndOfChannel):
            await out.receive()


_STAGES = st.lists(
    st.sampled_from(["inc", "double", "odd", "not3", "buf1", "buf7", "async_inc"]), max_size=6
)


@settings(max_examples=80, deadline=None)
@given(stages=_STAGES, n=st.integers(0, 700), hop=st.integers(1, 40))
def test_any_stage_combination_matches_the_reference(stages: list[str], n: int, hop: int) -> None:
    """Fusion, hops and buffers never change the result or its order."""

    async def async_inc(x: int) -> int:
        return x + 1

    def build(name: str) -> Any:
        return {
            "inc": lambda: flowkit.map(lambda x: x + 1),
            "double": lambda: flowkit.map(lambda x: x * 2),
            "odd": lambda: flowkit.filter(lambda x: x % 2),
            "not3": lambda: flowkit.filter(lambda x: x % 3),
            "buf1": lambda: flowkit.buffer(1),
            "buf7": lambda: flowkit.buffer(7),
            "async_inc": lambda: flowkit.map(async_inc),
        }[name]()

    reference = list(range(n))
    for name in stages:
        if name in ("inc", "async_inc"):
            reference = [x + 1 for x in reference]
        elif name == "double":
            reference = [x * 2 for x in reference]
        elif name == "odd":
            reference = [x for x in reference if x % 2]
        elif name == "not3":
            reference = [x for x in reference if x % 3]

    async def main() -> list[int]:
        ops = [build(name) for name in stages]
        async with flowkit.open_pipeline(range(n), *ops, hop_items=hop) as out:
            result = [x async for x in out]
        for stat in out.statistics():
            assert stat.items_in == stat.items_out + stat.dropped + stat.filtered + stat.buffered
            if stat.name == "buffer":
                # adjacent buffers share one hop of their summed capacity
                assert stat.buffered_peak <= stages.count("buf1") + 7 * stages.count("buf7")
        return result

    assert trio.run(main) == reference


async def test_original_cause_survives_the_pipeline() -> None:
    def fail(x: int) -> int:
        try:
            raise KeyError(x)
        except KeyError as error:
            raise ValueError("wrapped") from error

    with pytest.raises(ValueError, match="wrapped") as info:
        await _collect(range(3), flowkit.buffer(1), flowkit.map(fail), flowkit.buffer(1))
    assert isinstance(info.value.__cause__, KeyError)


async def test_lossy_stage_gets_a_one_item_hop(autojump_clock: trio.abc.Clock) -> None:
    """A default 16-item hop after ``latest`` would queue stale values."""

    async def fast() -> AsyncIterator[int]:
        for i in range(100):
            yield i
            await trio.sleep(0.001)

    async with flowkit.open_pipeline(fast(), flowkit.latest(), hop_items=16) as out:
        assert await out.receive() == 0
        await trio.sleep(1)  # a stalled consumer
        late = [await out.receive(), await out.receive()]
    # the one value that was in the hop, then the newest, held by latest
    assert late == [1, 99]


async def test_drain_on_error_delivers_what_preceded_the_failure() -> None:
    async def agen() -> AsyncIterator[int]:
        for i in range(5):
            yield i
        raise OSError("sensor lost")

    seen: list[int] = []
    causes: list[BaseException | None] = []
    with pytest.raises(OSError, match="sensor lost"):
        async with flowkit.open_pipeline(
            agen(), flowkit.map(lambda x: x * 10), flowkit.buffer(8), drain_on_error=True
        ) as out:
            try:
                async for item in out:
                    seen.append(item)
            except flowkit.StreamAborted as aborted:
                causes.append(aborted.__cause__)
    assert seen == [0, 10, 20, 30, 40]
    assert len(causes) == 1
    assert isinstance(causes[0], OSError)


async def test_drain_on_error_raises_at_exit_when_the_body_stops_reading() -> None:
    async def crash(receive: Any, send: Any, **_: Any) -> None:
        async with receive, send:
            raise LookupError("stage failed")

    with pytest.raises(LookupError):
        async with flowkit.open_pipeline(range(3), crash, drain_on_error=True):
            await trio.testing.wait_all_tasks_blocked()


class _Explode(ValueError):
    pass


def _explode_at(bad: int) -> Any:
    def fn(x: int) -> int:
        if x == bad:
            raise _Explode(f"failed on {x}")
        return x

    return fn


async def _drained(
    source: Any, *stages: Any, hop_items: int = 16
) -> tuple[list[Any], BaseException | None]:
    """What a drain_on_error consumer receives, and the error the block raised."""
    seen: list[Any] = []
    try:
        async with flowkit.open_pipeline(
            source, *stages, hop_items=hop_items, drain_on_error=True
        ) as out:
            try:
                async for item in out:
                    seen.append(item)
            except flowkit.StreamAborted:
                pass
    except Exception as error:
        return seen, error
    return seen, None


async def _chunked_source() -> AsyncIterator[int]:
    """Hands the whole range over in one chunk (never suspends)."""
    for i in range(100):
        yield i


async def _async_identity(x: int) -> int:
    return x


def _filled(n: int) -> trio.MemoryReceiveChannel[int]:
    """A channel holding ``range(n)``: a stage reading it takes one whole chunk."""
    send, receive = trio.open_memory_channel[int](n)
    for i in range(n):
        send.send_nowait(i)
    send.close()
    return receive


# Where a failing sync map can sit, each fed whole chunks: fused into the
# source's pump (sync or async source), fused in a task of its own (a channel
# source has no pump), or in the consumer's task at the tail -- behind a
# filter and before another map.
_PLACEMENTS: dict[str, Any] = {
    "pump, sync source": lambda fn: (range(100), flowkit.map(fn), flowkit.map(_async_identity)),
    "pump, async source": lambda fn: (
        _chunked_source(),
        flowkit.map(fn),
        flowkit.map(_async_identity),
    ),
    "own task": lambda fn: (
        _filled(100),
        flowkit.filter(lambda x: x >= 0),
        flowkit.map(fn),
        flowkit.map(lambda x: x),
        flowkit.map(_async_identity),
    ),
    "tail": lambda fn: (
        _chunked_source(),
        flowkit.filter(lambda x: x >= 0),
        flowkit.map(fn),
        flowkit.map(lambda x: x),
    ),
}


@pytest.mark.parametrize("placement", sorted(_PLACEMENTS))
async def test_fused_failure_travels_behind_every_item_before_it(placement: str) -> None:
    """Regression: the outputs of a chunk's items before a fused failure were lost."""
    source, *stages = _PLACEMENTS[placement](_explode_at(60))
    seen, error = await _drained(source, *stages)
    assert seen == list(range(60))
    assert isinstance(error, _Explode)
    assert str(error) == "failed on 60"


async def test_the_first_failure_in_item_order_wins_in_a_fused_chain() -> None:
    """A later fused stage failing on an earlier item is the error raised."""
    seen, error = await _drained(
        range(100), flowkit.map(_explode_at(60)), flowkit.map(_explode_at(30))
    )
    assert seen == list(range(30))
    assert str(error) == "failed on 30"


async def test_a_failing_filter_keeps_what_it_passed_and_counts_what_it_took() -> None:
    def odd_until_51(x: int) -> bool:
        if x == 51:
            raise _Explode("filter failed")
        return bool(x % 2)

    stage = flowkit.filter(odd_until_51)
    seen, error = await _drained(range(100), stage)
    assert seen == list(range(1, 51, 2))
    assert isinstance(error, _Explode)
    stats = stage.statistics()
    assert (stats.items_in, stats.items_out, stats.filtered, stats.buffered) == (52, 25, 26, 1)
    assert stats.items_in == stats.items_out + stats.filtered + stats.buffered


@settings(max_examples=60, deadline=None)
@given(
    bad=st.integers(0, 300),
    hop=st.integers(1, 40),
    chunks=st.lists(st.integers(1, 50), min_size=1, max_size=20),
    placement=st.sampled_from(sorted(_PLACEMENTS)),
)
def test_random_chunking_never_loses_an_item_before_a_failure(
    bad: int, hop: int, chunks: list[int], placement: str
) -> None:
    """Whatever the chunking, every item before the failing one arrives."""

    async def main() -> tuple[list[Any], BaseException | None]:
        async def source() -> AsyncIterator[int]:
            # items arrive in bursts of random sizes, with a scheduler trip between
            i = 0
            for size in itertools.cycle(chunks):
                for _ in range(size):
                    yield i
                    i += 1
                    if i == 400:
                        return
                await trio.lowlevel.checkpoint()

        _, *stages = _PLACEMENTS[placement](_explode_at(bad))
        return await _drained(source(), *stages, hop_items=hop)

    seen, error = trio.run(main)
    assert seen == list(range(bad))
    assert isinstance(error, _Explode)
