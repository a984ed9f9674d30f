"""zip / combine_latest / zip_latest: tuples of several inputs."""

from __future__ import annotations

import builtins
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator


async def paced(items: Any, gap: float, start: float = 0.0) -> AsyncIterator[Any]:
    await trio.sleep(start)
    for item in items:
        yield item
        await trio.sleep(gap)


def conserved(stats: flowkit.OperatorStatistics) -> bool:
    return stats.items_in == stats.items_out + stats.dropped + stats.filtered + stats.buffered


# -- the contract ------------------------------------------------------------------


async def test_contract(autojump_clock: trio.testing.MockClock) -> None:
    # Their statistics count every input's items, and the checker knows only
    # the upstream's, so the "statistics" step is left to the tests below.
    others = {"statistics"}
    await check_operator(
        lambda: flowkit.zip(paced("abcd", 0)),
        [1, 2, 3],
        expected=[(1, "a"), (2, "b"), (3, "c")],
        skip=others,
    )
    # Which upstream items meet the other input's first value depends on
    # scheduling (those before it are replaced), so only the last is fixed.
    got = await check_operator(
        lambda: flowkit.combine_latest(paced("a", 0)), [1, 2, 3], lossless=False, skip=others
    )
    assert got[-1] == (3, "a")
    await check_operator(
        lambda: flowkit.zip_latest(paced("a", 0)), [1, 2, 3], lossless=False, skip=others
    )


def test_they_need_another_input() -> None:
    for factory in (flowkit.zip, flowkit.combine_latest, flowkit.zip_latest):
        with pytest.raises(ValueError, match="at least one other input"):
            factory()


# -- zip -----------------------------------------------------------------------------


async def test_zip_is_lockstep_and_ends_with_the_shortest() -> None:
    send: flowkit.FlowSendChannel[str]
    send, receive = flowkit.open_channel(10)
    await send.send_all(["x", "y"])
    send.close()
    op = flowkit.zip(paced("abcdef", 0), receive)
    async with flowkit.open_pipeline(itertools.count(), op) as out:
        assert [t async for t in out] == [(0, "a", "x"), (1, "b", "y")]
    stats = op.statistics()
    assert stats.emitted == 2
    assert stats.items_out == 6  # three items per tuple
    assert conserved(stats)
    assert stats.buffered == 0


async def at_times(items: Any, every: float) -> AsyncIterator[Any]:
    """Item ``k`` is ready at ``k * every`` seconds, however late it is pulled."""
    start = trio.current_time()
    for k, item in enumerate(items):
        await trio.sleep_until(start + k * every)
        yield item


async def test_zip_waits_for_the_slowest_input(autojump_clock: trio.testing.MockClock) -> None:
    async with flowkit.open_pipeline(
        at_times(range(3), 0.1), flowkit.zip(at_times("abc", 1))
    ) as out:
        got = [(trio.current_time(), t) async for t in out]
    assert got == [(0, (0, "a")), (1, (1, "b")), (2, (2, "c"))]


async def test_zip_closes_its_other_inputs() -> None:
    closed = []

    async def endless() -> AsyncIterator[int]:
        try:
            for n in itertools.count():
                yield n
        finally:
            closed.append(True)

    send: flowkit.FlowSendChannel[int]
    send, receive = flowkit.open_channel(4)
    async with flowkit.open_pipeline([1], flowkit.zip(endless(), receive)) as out:
        await send.send(9)
        assert [t async for t in out] == [(1, 0, 9)]
    assert closed == [True]
    with pytest.raises(trio.BrokenResourceError):
        await send.send(10)  # its receive end was closed


async def test_zip_propagates_an_input_error_with_its_type() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise KeyError("other input")

    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(range(5), flowkit.zip(broken())) as out:
            [t async for t in out]


@settings(max_examples=100, deadline=None)
@given(
    a=st.lists(st.integers(), max_size=20),
    b=st.lists(st.integers(), max_size=20),
    gaps=st.tuples(st.sampled_from([0, 0.1, 1]), st.sampled_from([0, 0.3])),
)
def test_zip_matches_builtin_zip(a: list[int], b: list[int], gaps: tuple[float, float]) -> None:
    async def main() -> tuple[list[Any], flowkit.OperatorStatistics]:
        op = flowkit.zip(paced(b, gaps[1]))
        async with flowkit.open_pipeline(paced(a, gaps[0]), op) as out:
            return [t async for t in out], op.statistics()

    got, stats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert got == list(builtins.zip(a, b, strict=False))
    assert conserved(stats)
    assert stats.buffered == 0


# -- combine_latest / zip_latest ---------------------------------------------------


async def test_combine_latest_emits_on_every_update(autojump_clock: trio.testing.MockClock) -> None:
    op = flowkit.combine_latest(paced("ab", 2, start=0.5))
    async with flowkit.open_pipeline(paced(range(4), 1), op) as out:
        got = [(trio.current_time(), t) async for t in out]
    assert got == [(0.5, (0, "a")), (1, (1, "a")), (2, (2, "a")), (2.5, (2, "b")), (3, (3, "b"))]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.buffered) == (6, 6, 0, 0)


async def test_combine_latest_ends_at_once_if_an_input_never_delivers() -> None:
    op = flowkit.combine_latest(paced([], 0))
    async with flowkit.open_pipeline(itertools.count(), op) as out:
        assert [t async for t in out] == []
    assert conserved(op.statistics())


async def test_zip_latest_conflates_for_a_busy_consumer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    op = flowkit.zip_latest(paced("abcdefghij", 0.5))
    got = []
    async with flowkit.open_pipeline(paced(range(50), 0.1), op, flowkit.buffer(1)) as out:
        async for t in out:
            got.append(t)
            await trio.sleep(1)  # busy: updates in between are conflated
    assert got[-1] == (49, "j")  # the newest values always come out
    assert len(got) < 15
    stats = op.statistics()
    assert stats.items_in == 60
    assert conserved(stats)
    assert stats.dropped > 0
    assert stats.buffered == 0


async def test_zip_latest_with_a_waiting_consumer_is_combine_latest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def run(make: Callable[[], Any]) -> Any:
        async def main() -> list[Any]:
            async with flowkit.open_pipeline(paced(range(4), 1), make()) as out:
                return [(trio.current_time(), t) async for t in out]

        return main()

    latest = await run(lambda: flowkit.zip_latest(paced("ab", 2, start=0.5)))
    combined = await run(lambda: flowkit.combine_latest(paced("ab", 2, start=0.5)))
    assert [t for _, t in latest] == [t for _, t in combined]


def _latest_model(events: list[tuple[float, int, Any]], width: int) -> list[tuple[Any, ...]]:
    latest: list[Any] = [None] * width
    seen = [False] * width
    out = []
    for _, index, item in sorted(events, key=lambda e: e[0]):
        latest[index] = item
        seen[index] = True
        if all(seen):
            out.append(tuple(latest))
    return out


@settings(max_examples=100, deadline=None)
@given(
    a=st.lists(st.integers(0, 9), max_size=12),
    b=st.lists(st.integers(0, 9), max_size=12),
)
def test_combine_latest_matches_the_model(a: list[int], b: list[int]) -> None:
    # a at whole seconds, b at half past: no ties, one event at a time.
    events = [(float(i), 0, x) for i, x in enumerate(a)] + [
        (i + 0.5, 1, x) for i, x in enumerate(b)
    ]

    async def main() -> tuple[list[Any], flowkit.OperatorStatistics]:
        op = flowkit.combine_latest(paced(b, 1, start=0.5))
        async with flowkit.open_pipeline(paced(a, 1), op) as out:
            return [t async for t in out], op.statistics()

    got, stats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    expected = _latest_model(events, 2) if a and b else []
    assert got == expected
    assert conserved(stats)
    assert stats.buffered == 0
