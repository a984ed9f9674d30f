"""flowkit_http._pacing.Pacer: new connections wait while requests work, never long.

On trio's mock clock: the accept loop's wait ends when a working request
writes its head, or when the oldest one ages out, and never lasts more
than ``age``; a request counts for ``age`` at most, whatever it does.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from flowkit_http._pacing import Pacer


async def test_room_at_once_below_the_limit_and_always_when_off() -> None:
    pacer = Pacer(2, 0.02)
    pacer.begin("a")
    with trio.testing.assert_no_checkpoints():
        await pacer.room()
    off = Pacer(0, 0.02)
    for key in "abc":
        off.begin(key)
    with trio.testing.assert_no_checkpoints():
        await off.room()
    assert pacer.waited == off.waited == 0


async def test_a_full_pacer_waits_for_a_request_to_write_its_head(
    mock_clock: trio.testing.MockClock,
) -> None:
    pacer = Pacer(2, 0.02)
    pacer.begin("a")
    pacer.begin("b")
    done = trio.Event()

    async def accept() -> None:
        await pacer.room()
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        mock_clock.jump(0.005)
        pacer.end("b")  # b's head is written
        await trio.testing.wait_all_tasks_blocked()
        assert done.is_set()
    assert trio.current_time() == pytest.approx(0.005)
    assert pacer.waited == 1


async def test_a_request_counts_for_age_at_most_and_a_wait_lasts_age_at_most(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.autojump_threshold = 0  # time moves whenever everything waits
    pacer = Pacer(1, 0.02)
    pacer.begin("slow tool")  # never writes its head
    await pacer.room()
    assert trio.current_time() == pytest.approx(0.02)  # it aged out
    assert len(pacer) == 0
    start = trio.current_time()
    pacer.begin("a")
    await trio.sleep(0.01)
    pacer.begin("b")  # younger: it still counts when "a" ages out
    await pacer.room()  # waits for both, but no longer than age
    assert trio.current_time() - start == pytest.approx(0.03)
    pacer.limit = 2
    pacer.begin("c")
    await trio.sleep(0.01)
    pacer.begin("d")
    await pacer.room()  # room as soon as "c" ages out
    assert trio.current_time() - start == pytest.approx(0.05)
    assert len(pacer) == 1  # d still counts


async def test_a_request_that_starts_again_counts_from_its_new_start(
    mock_clock: trio.testing.MockClock,
) -> None:
    pacer = Pacer(1, 0.02)
    pacer.begin("conn")
    mock_clock.jump(0.015)
    pacer.begin("conn")  # the connection's next request
    mock_clock.jump(0.015)
    assert len(pacer) == 1  # 15 ms old, not 30
    pacer.end("conn")
    pacer.end("conn")  # ending twice is harmless
    assert len(pacer) == 0


@pytest.mark.parametrize(("limit", "age"), [(-1, 0.02), (1, 0.0), (1, float("inf"))])
def test_bad_settings_are_refused(limit: int, age: float) -> None:
    with pytest.raises(ValueError, match="limit must be >= 0"):
        Pacer(limit, age)


async def test_aged_entries_go_when_the_next_request_begins(
    mock_clock: trio.testing.MockClock,
) -> None:
    pacer = Pacer(8, 0.02)
    pacer.begin("died mid-request")  # never ends: its connection was cancelled
    mock_clock.jump(0.05)
    pacer.begin("next")
    assert list(pacer._working) == ["next"]  # not held until an accept looks
