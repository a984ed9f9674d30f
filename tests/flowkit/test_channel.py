"""flowkit channels: item bounds, chunked transfer, cancel-atomicity, honest ends."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

import flowkit
from flowkit._channel import _open_stage_channel


async def test_bound_is_in_items_and_send_some_takes_what_fits() -> None:
    send, receive = flowkit.open_channel(3)
    assert await send.send_some([1, 2]) == 2
    assert await send.send_some([3, 4, 5]) == 1  # only one slot left
    with pytest.raises(trio.WouldBlock):
        send.send_nowait(9)
    assert await receive.receive_some(2) == [1, 2]
    assert await receive.receive_some() == [3]
    stats = send.statistics()
    assert (stats.items_sent, stats.items_received, stats.peak_buffer_used) == (3, 3, 3)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3"])
def test_rejects_bad_bounds(bad: object) -> None:
    with pytest.raises(ValueError, match="max_items"):
        flowkit.open_channel(bad)  # type: ignore[arg-type]


async def test_unbounded() -> None:
    send, receive = flowkit.open_channel(math.inf)
    await send.send_all(list(range(1000)))
    assert len(await receive.receive_some()) == 1000


async def test_cancelled_receive_takes_nothing() -> None:
    send, receive = flowkit.open_channel(4)
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            nursery.start_soon(_cancel_when_blocked, scope)
            await receive.receive()
        assert scope.cancelled_caught
    await send.send(1)
    assert receive.receive_nowait() == 1


async def test_cancelled_send_sends_nothing() -> None:
    send, receive = flowkit.open_channel(1)
    await send.send(1)
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            nursery.start_soon(_cancel_when_blocked, scope)
            await send.send_some([2, 3])
    assert await receive.receive_some() == [1]
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


async def _cancel_when_blocked(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()
    scope.cancel()


async def test_blocked_sender_wakes_when_room_appears(autojump_clock: trio.abc.Clock) -> None:
    send, receive = flowkit.open_channel(1)
    await send.send(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send.send, 2)
        await trio.sleep(5)
        assert receive.receive_nowait() == 1
    assert receive.receive_nowait() == 2
    assert send.statistics().send_blocked_seconds == pytest.approx(5)


async def test_end_after_all_clones_close() -> None:
    send, receive = flowkit.open_channel(4)
    other = send.clone()
    await send.send(1)
    await send.aclose()
    await other.send(2)
    other.close()
    assert await receive.receive_some() == [1, 2]
    with pytest.raises(trio.EndOfChannel):
        await receive.receive()
    with pytest.raises(trio.ClosedResourceError):
        await send.send(3)


async def test_closed_receivers_break_senders_and_wake_them() -> None:
    send, receive = flowkit.open_channel(1)
    await send.send(1)
    async with trio.open_nursery() as nursery:

        async def blocked() -> None:
            with pytest.raises(trio.BrokenResourceError):
                await send.send(2)

        nursery.start_soon(blocked)
        await trio.testing.wait_all_tasks_blocked()
        await receive.aclose()
    with pytest.raises(trio.BrokenResourceError):
        send.send_nowait(3)


async def test_receive_clones_share_items() -> None:
    send, receive = flowkit.open_channel(8)
    other = receive.clone()
    await send.send_all([1, 2, 3])
    send.close()
    got = [receive.receive_nowait(), other.receive_nowait(), receive.receive_nowait()]
    assert got == [1, 2, 3]
    with pytest.raises(trio.EndOfChannel):
        other.receive_nowait()


async def test_stage_channel_defers_end_until_finish() -> None:
    send, receive = _open_stage_channel(4)
    await send.send(1)
    send.close()
    assert receive.receive_nowait() == 1
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()  # closed, but the stage has not returned yet
    send._finish()
    with pytest.raises(trio.EndOfChannel):
        receive.receive_nowait()


async def test_stage_channel_abort_delivers_items_then_streamaborted() -> None:
    send, receive = _open_stage_channel(4)
    await send.send_all([1, 2])
    send._abort(KeyError("boom"))
    assert await receive.receive_some() == [1, 2]
    with pytest.raises(flowkit.StreamAborted) as info:
        await receive.receive()
    assert isinstance(info.value.__cause__, KeyError)


async def test_receiving_on_closed_end_raises_closed() -> None:
    send, receive = flowkit.open_channel(1)
    receive.close()
    with pytest.raises(trio.ClosedResourceError):
        await receive.receive()
    with pytest.raises(trio.ClosedResourceError):
        receive.clone()
    send.close()
    with pytest.raises(trio.ClosedResourceError):
        send.clone()


async def test_abort_on_a_plain_channel_is_not_a_clean_end() -> None:
    send, receive = flowkit.open_channel(2)
    await send.send(1)
    send._abort(ValueError("x"))
    assert receive.receive_nowait() == 1
    with pytest.raises(flowkit.StreamAborted):
        receive.receive_nowait()


async def test_receive_some_nowait_takes_what_is_ready_and_reports_the_end() -> None:
    send, receive = flowkit.open_channel(8)
    with pytest.raises(trio.WouldBlock):
        receive.receive_some_nowait()
    await send.send_all([1, 2, 3, 4])
    assert receive.receive_some_nowait(3) == [1, 2, 3]
    assert receive.receive_some_nowait() == [4]
    with pytest.raises(trio.WouldBlock):
        receive.receive_some_nowait()
    await send.send(5)
    send.close()
    assert receive.receive_some_nowait() == [5]  # drained before the end shows
    with pytest.raises(trio.EndOfChannel):
        receive.receive_some_nowait()
    receive.close()
    with pytest.raises(trio.ClosedResourceError):
        receive.receive_some_nowait()


async def test_receive_some_nowait_after_a_crash_drains_then_raises_streamaborted() -> None:
    send, receive = _open_stage_channel(4)
    await send.send_all([1, 2])
    send._abort(KeyError("boom"))
    assert receive.receive_some_nowait() == [1, 2]
    with pytest.raises(flowkit.StreamAborted):
        receive.receive_some_nowait()


async def test_park_is_none_when_ready_and_otherwise_waits_for_a_send_or_the_end() -> None:
    send, receive = flowkit.open_channel(8)
    got: list[list[int]] = []

    async def consumer() -> None:
        while True:
            while (wait := receive.park()) is not None:
                await wait
            try:
                got.append(receive.receive_some_nowait())
            except trio.EndOfChannel:
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # parked: nothing ready
        send.send_nowait(1)
        send.send_nowait(2)
        await trio.testing.wait_all_tasks_blocked()
        assert got == [[1, 2]]
        send.close()  # the end wakes it too, and take reports it
    assert receive.park() is None  # ended: a receive returns at once
    receive.close()
    with pytest.raises(trio.ClosedResourceError):
        receive.park()


async def test_a_waiting_receive_some_wakes_with_everything_sent() -> None:
    send, receive = flowkit.open_channel(8)
    got: list[list[int]] = []

    async def receiver() -> None:
        got.append(await receive.receive_some())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        send.send_nowait(1)
        send.send_nowait(2)  # both land before the woken receiver runs
    assert got == [[1, 2]]
