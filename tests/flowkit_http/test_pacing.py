"""flowkit_http._pacing.Pacer: new connections wait while requests work, never long.

On trio's mock clock: the accept loop's wait ends when a working request
writes its head, or when the oldest one ages out, and never lasts more
than ``age``; a request counts for ``age`` at most, whatever it does; and
which first requests may be handshakes (the ones that wait their turn).
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


async def _first_in_turn(pacer: Pacer, key: str, began: list[str]) -> None:
    await pacer.first(key)
    began.append(key)


async def test_first_requests_beyond_the_limit_wait_their_turn_in_arrival_order(
    mock_clock: trio.testing.MockClock,  # time moves only when the test moves it
) -> None:
    pacer = Pacer(2, 0.02)
    began: list[str] = []
    async with trio.open_nursery() as nursery:
        for key in "abcde":
            nursery.start_soon(_first_in_turn, pacer, key, began)
            await trio.testing.wait_all_tasks_blocked()
        assert began == ["a", "b"]  # two at work, three waiting
        pacer.begin("served")  # a request on a connection in use: never waits
        pacer.begin("served too")
        assert len(pacer) == 4  # and it does not count against first requests
        pacer.end("served")
        await trio.testing.wait_all_tasks_blocked()
        assert began == ["a", "b"]
        pacer.end("b")  # b's head is written: the next in line goes
        await trio.testing.wait_all_tasks_blocked()
        assert began == ["a", "b", "c"]
        pacer.end("a")
        await trio.testing.wait_all_tasks_blocked()
        assert began == ["a", "b", "c", "d"]
        pacer.end("c")
        await trio.testing.wait_all_tasks_blocked()
        assert began == ["a", "b", "c", "d", "e"]
    assert trio.current_time() == 0
    assert pacer.waited == 3


async def test_a_first_request_waits_for_the_oldest_to_age_out_at_most(
    autojump_clock: trio.abc.Clock,
) -> None:
    pacer = Pacer(1, 0.02)
    await pacer.first("slow upload")  # never writes its head
    await trio.sleep(0.005)
    with trio.testing.assert_checkpoints():
        await pacer.first("next")
    assert trio.current_time() == pytest.approx(0.02)  # it aged out, "next" went
    assert list(pacer._firsts) == ["next"]


async def test_a_cancelled_first_request_leaves_the_line(
    mock_clock: trio.testing.MockClock,
) -> None:
    pacer = Pacer(1, 0.02)
    began: list[str] = []
    await pacer.first("a")
    gone = trio.CancelScope()

    async def leaves() -> None:
        with gone:  # its client left while it waited
            await _first_in_turn(pacer, "left", began)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leaves)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_first_in_turn, pacer, "b", began)
        await trio.testing.wait_all_tasks_blocked()
        gone.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert len(pacer._turns) == 1  # only "b" waits now
        pacer.end("a")  # the turn goes to "b", not to the one that left
        await trio.testing.wait_all_tasks_blocked()
        assert began == ["b"]
    assert trio.current_time() == 0
    assert not pacer._turns


async def test_first_requests_never_wait_when_pacing_is_off() -> None:
    off = Pacer(0, 0.02)
    with trio.testing.assert_no_checkpoints():
        for key in "abc":
            await off.first(key)
    assert len(off) == 3
