"""The outbox alone, no server: both policies' bounds, coalescing and attachment.

Each test plays the runner (``add``/``offer``/``flush``/``finish``) and the
writer (``receive_some``) in one trio run on the mock clock.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from flowkit.mcp import EventId, InMemoryEventStore
from flowkit_http._outbox import ConflatingOutbox, LosslessOutbox, open_outbox


async def test_lossless_flush_waits_for_the_writer_and_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outbox = LosslessOutbox(max_events=2)
    received: list[bytes] = []

    async def writer() -> None:
        while True:
            try:
                received.extend(await outbox.receive_some())
            except trio.EndOfChannel:
                return
            await trio.sleep(1)  # a slow socket

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        for i in range(6):
            outbox.add("progress", b"e%d" % i)
            await outbox.flush()
            assert outbox.statistics().queued <= 2
        await outbox.finish(b"final")
    assert trio.current_time() >= 4  # the runner went at the writer's pace
    assert received == [b"e0", b"e1", b"e2", b"e3", b"e4", b"e5", b"final"]
    stats = outbox.statistics()
    assert stats.queued_peak <= stats.max_queued == 2
    assert stats.delivered == 7


async def test_lossless_coalesces_what_waits_into_one_batch() -> None:
    outbox = LosslessOutbox(max_events=8)
    for i in range(5):
        outbox.add("progress", b"e%d" % i)
    assert outbox.offer()
    assert await outbox.receive_some() == [b"e%d" % i for i in range(5)]
    assert outbox.statistics().writes == 1


async def test_lossless_offer_refuses_when_full_and_flush_finishes_the_job() -> None:
    outbox = LosslessOutbox(max_events=2)
    for i in range(3):
        outbox.add("progress", b"e%d" % i)
    assert not outbox.offer()  # two went, one waits
    assert outbox.statistics().queued == 2
    with trio.testing.assert_checkpoints():
        assert await outbox.receive_some() == [b"e0", b"e1"]
    await outbox.flush()
    assert await outbox.receive_some() == [b"e2"]


async def test_detached_discards_without_blocking_and_attach_purges() -> None:
    outbox = LosslessOutbox(max_events=1)
    outbox.add("progress", b"stale")
    assert outbox.offer()
    outbox.detach()
    for i in range(10):  # nobody reads: never blocks (the event store has them)
        outbox.add("progress", b"e%d" % i)
        await outbox.flush()
    assert outbox.statistics().queued == 0
    outbox.attach()
    outbox.add("progress", b"fresh")
    await outbox.flush()
    assert await outbox.receive_some() == [b"fresh"]


async def test_wake_returns_an_empty_batch_and_takes_no_room() -> None:
    for outbox in (LosslessOutbox(max_events=1), ConflatingOutbox(max_logs=1)):
        outbox.wake()
        assert await outbox.receive_some() == []
        assert outbox.statistics().queued == 0
        outbox.add("progress", b"p")
        await outbox.flush()
        assert await outbox.receive_some() == [b"p"]


async def test_abort_ends_the_outbox_and_drops_what_waits() -> None:
    for outbox in (LosslessOutbox(max_events=4), ConflatingOutbox(max_logs=4)):
        outbox.add("progress", b"lost")
        outbox.offer()
        outbox.abort()
        with pytest.raises(trio.EndOfChannel):
            await outbox.receive_some()


async def test_conflating_keeps_the_latest_progress_and_the_newest_logs() -> None:
    outbox = ConflatingOutbox(max_logs=2)
    for i in range(5):
        outbox.add("progress", b"p%d" % i)
        outbox.add("log", b"l%d" % i)
        await outbox.flush()  # never waits
    await outbox.finish(b"final")
    assert await outbox.receive_some() == [b"l3", b"l4", b"p4", b"final"]
    with pytest.raises(trio.EndOfChannel):
        await outbox.receive_some()
    stats = outbox.statistics()
    assert (stats.conflated_progress, stats.dropped_logs) == (4, 3)
    assert stats.queued_peak <= stats.max_queued == 4


async def test_conflating_detached_queues_nothing_not_even_the_final() -> None:
    outbox = ConflatingOutbox(max_logs=2)
    outbox.detach()
    outbox.add("log", b"l")
    await outbox.finish(b"final")  # a resuming client reads it from the store
    with pytest.raises(trio.EndOfChannel):
        await outbox.receive_some()


def test_open_outbox_picks_the_policy_and_insists_on_a_bound() -> None:
    assert isinstance(open_outbox("conflate", max_events=8, max_logs=2), ConflatingOutbox)
    assert isinstance(open_outbox("lossless", max_events=8, max_logs=2), LosslessOutbox)
    with pytest.raises(ValueError, match="bounded"):
        open_outbox("lossless", max_events=math.inf, max_logs=2)  # type: ignore[arg-type]


async def test_detached_lossless_pauses_at_its_unread_bounds_until_a_resume() -> None:
    for outbox, event in (
        (LosslessOutbox(max_events=4, max_unread=5), b"e"),  # counted in events
        (LosslessOutbox(max_events=4, max_unread_bytes=5000), b"x" * 1000),  # in bytes
    ):
        outbox.detach()
        for _ in range(4):
            outbox.add("progress", event)
            assert outbox.offer()
            assert not outbox.paused
        outbox.add("progress", event)
        assert not outbox.offer()  # the fifth unread event: flush must wait
        assert outbox.paused
        flushed = False

        async def runner(box: LosslessOutbox = outbox) -> None:
            nonlocal flushed
            await box.flush()
            flushed = True

        async with trio.open_nursery() as nursery:
            nursery.start_soon(runner)
            await trio.testing.wait_all_tasks_blocked()
            assert not flushed  # backpressure: the call waits, nothing is discarded
            outbox.attach()  # a client resumed (the store replays what it missed)
        assert flushed
        assert not outbox.paused


async def test_a_paused_outbox_lets_its_runner_go_when_aborted() -> None:
    outbox = LosslessOutbox(max_events=2, max_unread=1)
    outbox.detach()
    outbox.add("progress", b"e")
    assert not outbox.offer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.flush)
        await trio.testing.wait_all_tasks_blocked()
        outbox.abort()  # the call was cancelled: the wait ends
    assert not outbox.paused


async def test_a_detached_lossless_outbox_holds_its_stream_and_pauses_when_crowded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = InMemoryEventStore(max_bytes_per_session=500)
    store.append("s", EventId("1", 0), b"p" * 10)  # the priming event
    outbox = LosslessOutbox(max_events=4, hold=store.holder("s", "1"))
    outbox.detach()
    filed = 1
    with trio.move_on_after(10) as waited:
        while True:  # the runner: file each event in the store, then hand it over
            store.append("s", EventId("1", filed), b"e" * 100)
            filed += 1
            outbox.add("progress", b"e")
            await outbox.flush()
    assert waited.cancelled_caught  # paused: held events fill the session's bound
    assert outbox.paused
    assert filed == 6  # 10 + 5 x 100 bytes: the first step at or over 500
    assert len(store.replay_after("s", EventId("1", -1)) or ()) == filed  # none evicted
    outbox.attach()  # a client resumed: released, and the runner goes on
    assert not outbox.paused
    assert not store.crowded("s")


@pytest.mark.parametrize("policy", ["lossless", "conflate"])
async def test_ended_once_the_final_event_was_taken(policy: str) -> None:
    """The writer may end the response with the last events (one write, not two)."""
    box = open_outbox(policy, max_events=8, max_logs=2)
    box.add("progress", b"p")
    box.offer()
    assert not box.ended()
    await box.finish(b"final")
    assert not box.ended()  # the final event still waits
    assert await box.receive_some() in ([b"p", b"final"], [b"final"])
    assert box.ended()
    with pytest.raises(trio.EndOfChannel):
        await box.receive_some()


@pytest.mark.parametrize("policy", ["lossless", "conflate"])
async def test_wait_then_take_is_what_the_writer_does(policy: str) -> None:
    """``wait`` takes nothing and returns once ``take`` would not be empty-handed."""
    box = open_outbox(policy, max_events=8, max_logs=2)
    assert box.take() == []  # nothing waits: no error, no events
    woke = trio.Event()

    async def writer() -> None:
        await box.wait()
        woke.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert not woke.is_set()  # nothing to take yet: it waits
        box.add("progress", b"p")
        assert box.offer()
    assert woke.is_set()
    assert box.take() == [b"p"]
    with trio.CancelScope() as scope:
        scope.cancel()
        await box.wait()  # a full checkpoint: a cancel is seen even with nothing to wait for
    assert scope.cancelled_caught
    await box.finish(b"final")
    await box.wait()  # returns at once: the final event waits
    assert box.take() == [b"final"]
    await box.wait()  # and at the end
    with pytest.raises(trio.EndOfChannel):
        box.take()
