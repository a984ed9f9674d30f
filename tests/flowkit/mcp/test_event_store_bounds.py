"""The event store's bounds: per stream, per session and in total, and held streams.

Issue 20, items 2 and 3. The bounds evict oldest first; a held stream (a
lossless call whose client is gone) is never evicted from by the session or
server bound: its producer is told the store is crowded and pauses, so what
it made is kept. Random operations are checked against a model of what each
stream must still have.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flowkit.mcp import EventId, InMemoryEventStore, _events

PER_STREAM = 6
PER_STREAM_BYTES = 400
PER_SESSION_BYTES = 600
MAX_BYTES = 1000
MAX_EVENTS = 20


def _store() -> InMemoryEventStore:
    return InMemoryEventStore(
        max_events_per_stream=PER_STREAM,
        max_events=MAX_EVENTS,
        max_bytes_per_stream=PER_STREAM_BYTES,
        max_bytes_per_session=PER_SESSION_BYTES,
        max_bytes=MAX_BYTES,
    )


def _kept(store: InMemoryEventStore, session: str, stream: str) -> list[bytes]:
    return store.replay_after(session, EventId(stream, -1)) or []


def test_the_session_bound_evicts_that_sessions_oldest_only() -> None:
    store = InMemoryEventStore(max_bytes_per_session=1000)
    store.append("other", EventId("1", 0), b"o" * 300)
    for seq in range(5):
        store.append("s", EventId("a", seq), bytes([65 + seq]) * 300)
    assert [e[0] for e in _kept(store, "s", "a")] == [67, 68, 69]  # C, D, E: 900 bytes
    store.append("s", EventId("b", 0), b"x" * 300)
    assert store.session_size("s") == 900
    assert [e[0] for e in _kept(store, "s", "a")] == [68, 69]
    store.append("s", EventId("b", 1), b"y" * 300)
    assert [e[0] for e in _kept(store, "s", "a")] == [69]  # the session's oldest went
    assert _kept(store, "other", "1") == [b"o" * 300]  # another session keeps its own
    assert store.evicted == 4
    with pytest.raises(ValueError, match="max_bytes_per_session must be an int >= 1"):
        InMemoryEventStore(max_bytes_per_session=0)


def test_a_held_stream_keeps_its_events_and_the_store_says_crowded() -> None:
    store = InMemoryEventStore(max_bytes_per_session=1000, max_bytes=1500)
    store.append("s", EventId("held", 0), b"h" * 100)
    hold = store.holder("s", "held")
    hold.hold()
    made = [b"h" * 100]
    while not hold.crowded():  # the producer files until the store says crowded
        made.append(bytes([len(made)]) * 100)
        store.append("s", EventId("held", len(made) - 1), made[-1])
        store.append("s", EventId("lossy", len(made)), b"l" * 100)  # evicted instead
    assert _kept(store, "s", "held") == made  # nothing it made is lost
    assert store.session_size("s") == 1000  # all held: the lossy stream's went, counted
    assert store.replay_after("s", EventId("lossy", 0)) is None
    assert store.evicted == len(made) - 1
    # Other sessions fill the server: their oldest go, never the held stream's.
    for seq in range(30):
        store.append(f"t{seq}", EventId("1", 0), b"t" * 100)
    assert store.size <= 1500
    assert _kept(store, "s", "held") == made
    assert not store.crowded("t0")  # the server has room, its session too
    hold.release()  # a client reads it again: the bounds apply to it
    store.append("s", EventId("held", len(made)), b"n" * 100)
    assert store.session_size("s") <= 1000
    assert _kept(store, "s", "held") == [*made[1:], b"n" * 100]  # its oldest went


# Mostly appends: forgetting often would keep the store too empty to reach its bounds.
_ops = st.lists(
    st.tuples(
        st.sampled_from(["append"] * 6 + ["hold", "release", "forget"]),
        st.integers(0, 2),  # session
        st.integers(0, 2),  # stream
        st.integers(1, 250),  # event size
    ),
    max_size=150,
)


def _check_accounting(store: InMemoryEventStore) -> None:
    """The orders' entries account exactly for the retained events (no leak, no loss)."""
    streams = store._streams.values()
    assert len(store) == sum(len(s.events) for s in streams)
    assert store.size == sum(map(len, (e for s in streams for e in s.events)))
    entries = Counter(map(id, store._order))
    for stream in streams:
        assert entries[id(stream)] - stream.stale == len(stream.events) - stream.parked
    for session_id, session in store._sessions.items():
        mine = [s for s in streams if s.key[0] == session_id]
        assert session.size == store.session_size(session_id)
        assert session.size == sum(s.size for s in mine)
        assert session.held == sum(s.size for s in mine if s.held)
        entries = Counter(map(id, session.order))
        for stream in mine:
            assert entries[id(stream)] - stream.sstale == len(stream.events) - stream.sparked


@settings(max_examples=300, deadline=None)
@given(_ops)
@example(  # a hold before its stream's first append, then its session forgotten
    ops=[("append", 1, 0, 1), ("hold", 1, 1, 1), ("forget", 1, 0, 1), ("append", 1, 1, 134)]
)
def test_random_operations_keep_the_bounds_and_every_held_event(
    ops: list[tuple[str, int, int, int]],
) -> None:
    _run_ops(ops)


@settings(max_examples=200, deadline=None)
@given(_ops)
def test_the_same_when_every_run_is_a_deque(ops: list[tuple[str, int, int, int]]) -> None:
    """Runs are lists while short, then deques: both kinds, and the change, keep the books."""
    small = _events._SMALL
    _events._SMALL = 2
    try:
        _run_ops(ops)
    finally:
        _events._SMALL = small


def _run_ops(ops: list[tuple[str, int, int, int]]) -> None:
    store = _store()
    appended: dict[tuple[str, str], list[bytes]] = {}
    seqs: Counter[tuple[str, str]] = Counter()
    held: dict[tuple[str, str], list[bytes]] = {}  # what a held stream must still have
    for op, session_no, stream_no, size in ops:
        if op == "forget":
            session = f"s{session_no}"
            store.forget_session(session)
            for key in [k for k in appended if k[0] == session]:
                del appended[key]
            for key in [k for k in held if k[0] == session]:  # held before any append too
                del held[key]
            continue
        key = (f"s{session_no}", f"t{stream_no}")
        if op == "hold":
            if store._sessions.get(key[0]) is not None and key not in held:
                store.hold(*key)
                held[key] = _kept(store, *key)
        elif op == "release":
            store.release(*key)
            held.pop(key, None)
        else:
            event = bytes([seqs[key] % 256]) * size
            store.append(key[0], EventId(key[1], seqs[key]), event)
            seqs[key] += 1
            appended.setdefault(key, []).append(event)
            if key in held:  # only its own bound may take from it
                kept = held[key]
                kept.append(event)
                while len(kept) > PER_STREAM or (
                    sum(map(len, kept)) > PER_STREAM_BYTES and len(kept) > 1
                ):
                    del kept[0]
        _check_accounting(store)
        for k, kept in held.items():
            assert _kept(store, *k) == kept
        for k, made in appended.items():
            kept = _kept(store, *k)
            assert kept == made[len(made) - len(kept) :]  # oldest leave first
        held_bytes = sum(map(len, (e for kept in held.values() for e in kept)))
        assert store.size <= max(MAX_BYTES, held_bytes + 250)
        assert len(store) <= max(MAX_EVENTS, sum(map(len, held.values())) + 1)
        for session in {k[0] for k in appended}:
            mine = sum(map(len, (e for k, kept in held.items() if k[0] == session for e in kept)))
            assert store.session_size(session) <= max(PER_SESSION_BYTES, mine + 250)
