"""``flowkit.sleep_until``: trio.sleep_until's contract, one shared deadline for all sleepers.

On trio's ``MockClock`` (autojump): every sleeper wakes at its deadline and
never before; a cancelled
sleeper ends at once with ``Cancelled`` and its entry does not outlive it;
a past deadline is still a checkpoint.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

import flowkit
from flowkit import _sleep


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_each_sleeper_wakes_at_its_deadline_and_not_before(
    mock_clock: trio.testing.MockClock,
) -> None:
    woke: list[tuple[int, float]] = []
    start = trio.current_time()
    deadlines = [start + d for d in (0.5, 0.1, 0.3, 0.1, 2.0, 0.25)]

    async def sleeper(i: int, deadline: float) -> None:
        await flowkit.sleep_until(deadline)
        woke.append((i, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for i, deadline in enumerate(deadlines):
            nursery.start_soon(sleeper, i, deadline)
    assert sorted(woke, key=lambda w: w[1]) == woke  # woken in time order
    assert sorted(i for i, _ in woke[:2]) == [1, 3]  # the tie (trio may run either first)
    assert [i for i, _ in woke[2:]] == [5, 2, 0, 4]
    for i, at in woke:
        assert at == pytest.approx(deadlines[i])  # the clock jumped to each deadline exactly


async def test_a_ticking_schedule_does_not_drift(mock_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    ticks = []
    for k in range(1, 51):
        await flowkit.sleep_until(start + k * 0.1)
        ticks.append(trio.current_time() - start)
    assert ticks == pytest.approx([k * 0.1 for k in range(1, 51)])


async def test_a_later_sleeper_with_an_earlier_deadline_wakes_first(
    mock_clock: trio.testing.MockClock,
) -> None:
    order: list[str] = []
    start = trio.current_time()

    async def late() -> None:
        await flowkit.sleep_until(start + 10)
        order.append("late")

    async def early() -> None:
        await trio.sleep(1)  # the service already sleeps towards +10
        await flowkit.sleep_until(start + 2)
        order.append("early")
        assert trio.current_time() == pytest.approx(start + 2)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(late)
        nursery.start_soon(early)
    assert order == ["early", "late"]


async def test_cancelling_a_sleeper_ends_it_at_once(mock_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    with trio.move_on_after(1) as scope:
        await flowkit.sleep_until(start + 3600)
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(start + 1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await flowkit.sleep_until(start + 3600)  # already cancelled: raised at the park
    assert scope.cancelled_caught


async def test_a_past_deadline_is_still_a_checkpoint() -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await flowkit.sleep_until(trio.current_time() - 1)
        pytest.fail("a cancelled checkpoint returned")  # pragma: no cover
    assert scope.cancelled_caught
    with trio.testing.assert_checkpoints():  # a schedule point and a cancel point
        await flowkit.sleep_until(-math.inf)


async def test_nan_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        await flowkit.sleep_until(math.nan)


async def test_cancelled_entries_do_not_accumulate(mock_clock: trio.testing.MockClock) -> None:
    """A day-long sleep cancelled many times holds no entry per cancel until its deadline."""
    start = trio.current_time()
    for _ in range(2_000):
        with trio.move_on_after(0.001):
            await flowkit.sleep_until(start + 86_400)
    timer = _sleep._TIMER.get()
    assert len(timer.heap) <= 130  # rebuilt each time half of it was dead (> 64)
    await flowkit.sleep_until(trio.current_time() + 0.01)  # and it still works


async def test_many_sleepers_park_in_one_heap_and_wake_on_time(
    mock_clock: trio.testing.MockClock,
) -> None:
    """500 streams ticking, each on time: all parked in the one heap the service serves."""
    start = trio.current_time()
    late: list[float] = []

    async def ticker(i: int) -> None:
        for k in range(1, 6):
            due = start + k * 0.1 + i / 5000
            await flowkit.sleep_until(due)
            late.append(trio.current_time() - due)

    async with trio.open_nursery() as nursery:
        for i in range(500):
            nursery.start_soon(ticker, i)
        await trio.sleep(0.05)
        assert len(_sleep._TIMER.get().heap) == 500
    assert len(late) == 2_500
    assert max(late) == pytest.approx(0, abs=1e-9)
