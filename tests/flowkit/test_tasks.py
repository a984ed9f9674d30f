"""aclose_shielded: an async generator's cleanup runs to its end, even under cancellation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

import flowkit


async def test_a_cancelled_closer_still_lets_the_generators_cleanup_await(
    autojump_clock: trio.abc.Clock,
) -> None:
    cleaned: list[str] = []

    async def source() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await trio.sleep(0.01)  # async cleanup: the first await a cancellation would hit
            cleaned.append("done")

    iterator = source()
    assert await iterator.__anext__() == 1
    with trio.CancelScope() as scope:
        scope.cancel()
        await flowkit.aclose_shielded(iterator)
    assert cleaned == ["done"]
    assert [x async for x in iterator] == []  # closed


async def test_an_iterator_without_aclose_is_left_alone() -> None:
    iterator = iter([1, 2])
    await flowkit.aclose_shielded(iterator)
    assert list(iterator) == [1, 2]


async def test_pipeline_sources_are_closed_when_the_consumer_leaves_early(
    autojump_clock: trio.abc.Clock,
) -> None:
    closed = trio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            await trio.sleep(1)
            closed.set()

    async with flowkit.open_pipeline(endless()) as out:
        async for item in out:
            if item == 3:
                break
    assert closed.is_set()
