"""SharedState, the HTTP adapter's driver of a shared store, without a server.

The store here is a recording fake whose ``apply`` the test can hold and
fail: what is checked is the adapter's ordering, which no real store can be
made to exercise deterministically (a writer cancelled in the middle of an
apply, an apply that fails). Redis-backed behaviour is in tests/integration/flowkit_redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from flowkit.mcp._shared import Change, EventAppended, Loaded, SessionTouched, StateKeys
from flowkit_http._shared import SharedState, StoreFailed


class Journal:
    """The part of an Endpoint SharedState uses: has_changes() and take_changes()."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.ended: set[tuple[str, str]] = set()  # streams the core will not give up

    def emit(self, seq: int) -> None:
        self.changes.append(EventAppended("s", "a.1", seq, b"event %d" % seq))

    def has_changes(self) -> bool:
        return bool(self.changes)

    def take_changes(self) -> tuple[Change, ...]:
        taken, self.changes = tuple(self.changes), []
        return taken

    def abandon_streams(self, streams: set[tuple[str, str]], message: str) -> tuple[Any, ...]:
        self.abandoned = (streams, message)
        self.changes.append(EventAppended("s", "a.1", 99, b"the error"))  # filed after the rest
        return tuple(_Stream(*key) for key in sorted(streams) if key not in self.ended)


@attrs.frozen
class _Stream:
    """What SharedState reads of a stream the core gave up."""

    session_id: str
    stream_id: str


class Store:
    def __init__(self) -> None:
        self.applied: list[Change] = []
        self.batches: list[list[int]] = []  # the seqs of each apply, in order
        self.touched: list[list[str]] = []  # the session ids of each heartbeat's apply
        self.hold: trio.Event | None = None
        self.entered = trio.Event()
        self.fail = False

    async def load(self, keys: StateKeys) -> Loaded:
        return Loaded()

    async def apply(self, changes: Sequence[Change]) -> None:
        touches = all(type(change) is SessionTouched for change in changes)
        if not touches:  # a round's; the heartbeat's touches go beside the rounds, never held
            self.entered.set()
            if self.hold is not None:
                await self.hold.wait()
        if self.fail:
            raise OSError("store down")
        if touches:
            self.touched.append(sorted(change.session_id for change in changes))  # type: ignore[attr-defined]
            return
        self.applied += changes
        self.batches.append(seqs(changes))


def seqs(changes: Sequence[Any]) -> list[int]:
    return [change.seq for change in changes]


async def test_a_writer_cancelled_mid_apply_still_stores_what_it_took() -> None:
    store, journal = Store(), Journal()
    state = SharedState(store)
    journal.emit(1)
    store.hold = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(state.sync, journal)  # type: ignore[arg-type]
        await store.entered.wait()
        nursery.cancel_scope.cancel()  # the client left while its write was being stored
        store.hold.set()
    assert seqs(store.applied) == [1]


async def test_changes_of_a_failed_apply_are_written_first_next_time() -> None:
    store, journal = Store(), Journal()
    state = SharedState(store)
    journal.emit(1)
    store.fail = True
    with pytest.raises(StoreFailed) as failed:
        await state.sync(journal)  # type: ignore[arg-type]
    assert failed.value.reply.status == 503
    assert dict(failed.value.reply.headers)[b"retry-after"] == b"1"
    journal.emit(2)
    store.fail = False
    await state.sync(journal)  # type: ignore[arg-type]
    assert seqs(store.applied) == [1, 2]


async def test_a_sync_waits_for_the_apply_in_progress() -> None:
    """A writer that returns from sync knows that everything journaled before is stored."""
    store, journal = Store(), Journal()
    state = SharedState(store)
    journal.emit(1)
    store.hold = trio.Event()
    done: list[str] = []
    async with trio.open_nursery() as nursery:

        async def first() -> None:
            await state.sync(journal)  # type: ignore[arg-type]
            done.append("first")

        async def second() -> None:
            await state.sync(journal)  # type: ignore[arg-type]  # nothing left to take
            done.append("second")
            assert seqs(store.applied) == [1]  # what the first took is stored

        nursery.start_soon(first)
        await store.entered.wait()
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()
        assert done == []
        store.hold.set()
    assert sorted(done) == ["first", "second"]


class _Turns(trio.abc.Instrument):
    """Counts the turns of trio's run loop (one I/O wait each)."""

    def __init__(self) -> None:
        self.count = 0

    def before_io_wait(self, timeout: float) -> None:
        self.count += 1


async def _writers_behind_a_held_apply(
    state: SharedState, store: Store, journal: Journal, n: int
) -> tuple[list[Any], int]:
    """Writer 0's apply is held; writers 1..n each journal an event and sync meanwhile.

    Returns what each of 1..n got (``None`` or the exception it raised), and
    how many turns of trio's loop they took to return once the hold ended.
    """
    journal.emit(0)
    store.hold = trio.Event()
    outcomes: list[Any] = [None] * (n + 1)

    async def writer(i: int) -> None:
        if i:
            journal.emit(i)
        try:
            await state.sync(journal)  # type: ignore[arg-type]
        except StoreFailed as exc:
            outcomes[i] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer, 0)
        await store.entered.wait()
        for i in range(1, n + 1):
            nursery.start_soon(writer, i)
        await trio.testing.wait_all_tasks_blocked()
        assert store.batches == []  # all of them wait for the held round
        turns = _Turns()
        trio.lowlevel.add_instrument(turns)
        store.hold.set()
    trio.lowlevel.remove_instrument(turns)
    return outcomes[1:], turns.count


async def test_writers_behind_a_round_share_the_next_one() -> None:
    """A group commit: 20 writers waiting make one round, and return together.

    A lock per apply made the same one round, but then passed the lock to
    each writer in turn, one turn of trio's loop each, for it to find its
    events stored: 21 turns here, a 400 ms convoy at 500 timed streams.
    """
    store, journal = Store(), Journal()
    state = SharedState(store)
    outcomes, turns = await _writers_behind_a_held_apply(state, store, journal, 20)
    assert outcomes == [None] * 20
    assert [sorted(batch) for batch in store.batches] == [[0], list(range(1, 21))]
    assert turns <= 6


async def test_every_writer_of_a_failed_round_is_refused_and_its_changes_kept() -> None:
    store, journal = Store(), Journal()
    state = SharedState(store)
    store.fail = True
    outcomes, _ = await _writers_behind_a_held_apply(state, store, journal, 3)
    assert [type(o) for o in outcomes] == [StoreFailed] * 3  # no bytes of theirs may go
    assert {o.reply.status for o in outcomes} == {503}
    store.fail, store.hold = False, None
    journal.emit(4)
    await state.sync(journal)  # type: ignore[arg-type]
    assert [sorted(batch) for batch in store.batches] == [[0, 1, 2, 3, 4]]  # kept, then new


async def test_kept_changes_are_bounded_while_the_store_fails() -> None:
    """Beyond max_pending_bytes the streams of the kept events are given up, never gapped."""
    store, journal = Store(), Journal()
    stopped: list[Any] = []
    state = SharedState(store, max_pending_bytes=40, stop=stopped.append)
    store.fail = True
    for seq in range(1, 6):  # 7 bytes each: 35 kept, within the bound
        journal.emit(seq)
        with pytest.raises(StoreFailed):
            await state.sync(journal)  # type: ignore[arg-type]
    assert stopped == []
    journal.emit(6)  # 42 bytes: over
    with pytest.raises(StoreFailed):
        await state.sync(journal)  # type: ignore[arg-type]
    assert journal.abandoned[0] == {("s", "a.1")}
    assert "could not be stored" in journal.abandoned[1]
    assert stopped == [(_Stream("s", "a.1"),)]
    assert state.abandoned == 1
    store.fail = False
    await state.sync(journal)  # type: ignore[arg-type]
    assert seqs(store.applied) == [99]  # the kept events went; the call's error is stored


async def test_events_of_a_stream_that_already_ended_are_kept_not_dropped() -> None:
    """The core will not give up an ended stream (nothing can follow its end): keep its events."""
    store, journal = Store(), Journal()
    stopped: list[Any] = []
    state = SharedState(store, max_pending_bytes=10, stop=stopped.append)
    journal.ended.add(("s", "a.1"))
    store.fail = True
    for seq in (1, 2):  # 14 bytes: over the bound
        journal.emit(seq)
        with pytest.raises(StoreFailed):
            await state.sync(journal)  # type: ignore[arg-type]
    assert stopped == [()]
    assert state.abandoned == 0
    store.fail = False
    await state.sync(journal)  # type: ignore[arg-type]
    assert seqs(store.applied)[:2] == [1, 2]  # stored once the store is back: no gap


class _Sessions:
    """The part of an Endpoint SharedState.heartbeat reads: sessions, idle timeout, clock."""

    def __init__(self, idle_timeout: float) -> None:
        self.busy: set[str] = set()
        self.now = 0.0
        self.config = SimpleNamespace(session_idle_timeout=idle_timeout)
        self.state = SimpleNamespace(clock=lambda: self.now, detached_calls=())

    @property
    def sessions(self) -> list[Any]:
        return [SimpleNamespace(id=sid, busy=True) for sid in sorted(self.busy)]


async def test_busy_sessions_are_touched_once_per_quarter_idle_timeout() -> None:
    store, endpoint = Store(), _Sessions(idle_timeout=8)  # touched every 2 s
    state = SharedState(store)
    endpoint.busy = {"a", "b"}
    for now in (0, 1, 1.9, 2, 3):
        endpoint.now = now
        await state.heartbeat(endpoint)  # type: ignore[arg-type]
    assert store.touched == [["a", "b"], ["a", "b"]]  # at 0 and 2
    endpoint.busy = {"b", "c"}  # a no longer busy: forgotten; c newly busy: touched at once
    endpoint.now = 3.5
    await state.heartbeat(endpoint)  # type: ignore[arg-type]
    assert store.touched[2:] == [["c"]]
    store.fail, endpoint.now = True, 4  # b due, and the store fails: logged, due again
    await state.heartbeat(endpoint)  # type: ignore[arg-type]
    store.fail, endpoint.now = False, 4.5
    await state.heartbeat(endpoint)  # type: ignore[arg-type]
    assert store.touched[2:] == [["c"], ["b"]]
    endpoint.busy.add("a")
    await state.heartbeat(endpoint)  # type: ignore[arg-type]
    assert store.touched[4:] == [["a"]]  # busy again: seen anew


async def test_the_heartbeat_does_not_wait_for_a_round() -> None:
    store, journal, endpoint = Store(), Journal(), _Sessions(idle_timeout=8)
    state = SharedState(store)
    endpoint.busy = {"a"}
    journal.emit(1)
    store.hold = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(state.sync, journal)  # type: ignore[arg-type]
        await store.entered.wait()
        await state.heartbeat(endpoint)  # type: ignore[arg-type]  # the round is still held
        assert store.touched == [["a"]]
        assert store.batches == []
        store.hold.set()
    assert store.batches == [[1]]
