"""Resumability: 2025-11-25 "Transports" -> "Resumability and Redelivery".

Replay only the disconnected stream's later events; never another stream's,
never another session's (checklist B5, D "Event-store replay crossing streams
or sessions").
"""

from __future__ import annotations

import pytest

from flowkit.mcp import EventId, InMemoryEventStore, Reply, Resume, tool_result

from ._client import Client, make_endpoint, sse_data


def _two_streams() -> tuple[Client, list[bytes], list[bytes]]:
    client = Client(make_endpoint())
    client.initialize()
    a = client.start(id="a", progress_token="a")
    b = client.start(id="b", progress_token="b")
    a_events = [a.stream.open()[2]]
    b_events = [b.stream.open()[2]]
    for i in range(1, 4):
        a_events.append(a.stream.progress(i))
        b_events.append(b.stream.progress(i))
    a_events.append(a.stream.result(tool_result("a done")))
    return client, a_events, b_events


def _event_id(event: bytes) -> bytes:
    return event.split(b"\n", 1)[0].removeprefix(b"id: ")


def test_event_ids_unique_per_session_and_encode_the_stream() -> None:
    _, a_events, b_events = _two_streams()
    ids = [_event_id(e) for e in a_events + b_events]
    assert len(set(ids)) == len(ids)
    assert {i.split(b":")[0] for i in map(_event_id, a_events)} == {b"1"}
    assert {i.split(b":")[0] for i in map(_event_id, b_events)} == {b"2"}


def test_replay_only_later_events_of_that_stream() -> None:
    client, a_events, _ = _two_streams()
    resume = client.get(last_event_id=_event_id(a_events[1]))
    assert isinstance(resume, Resume)
    assert resume.stream_id == "1"
    assert resume.replay == tuple(a_events[2:])
    assert resume.live is None  # finished: the response is in the replay
    assert sse_data(resume.replay[-1])["id"] == "a"
    assert dict(resume.headers)[b"content-type"] == b"text/event-stream"


def test_resume_a_live_stream_then_continue_it() -> None:
    client, _, b_events = _two_streams()
    session = client.endpoint.sessions.get_any(client.session_id or "")
    assert session is not None
    stream_b = session.in_flight["b"]
    busy = client.get(last_event_id=_event_id(b_events[0]))
    assert isinstance(busy, Reply)
    assert busy.status == 409  # still attached to its POST response
    client.endpoint.stream_finished(stream_b, disconnected=True)
    assert stream_b.progress(4)  # produced while nobody listens: goes to the store
    resume = client.get(last_event_id=_event_id(b_events[2]))
    assert isinstance(resume, Resume)
    assert resume.live is stream_b
    assert len(resume.replay) == 2  # progress 3 and 4
    assert sse_data(resume.replay[-1])["params"]["progress"] == 4
    final = stream_b.result(tool_result("b done"))
    assert _event_id(final) == b"2:5"


def test_other_session_gets_nothing() -> None:
    client, a_events, _ = _two_streams()
    intruder = Client(client.endpoint)
    intruder.initialize()
    reply = intruder.get(last_event_id=_event_id(a_events[0]))
    assert isinstance(reply, Reply)
    assert reply.status == 404
    assert b"done" not in reply.body


@pytest.mark.parametrize("bad", [b"garbage", b"99:0", b"1", b"\xff", b"1:-1"])
def test_unknown_last_event_id_is_404(bad: bytes) -> None:
    client, _, _ = _two_streams()
    reply = client.get(last_event_id=bad)
    assert isinstance(reply, Reply)
    assert reply.status == 404


def test_cancelled_stream_stores_nothing_more() -> None:
    client, _, b_events = _two_streams()
    client.notify("notifications/cancelled", {"requestId": "b"})
    resume = client.get(last_event_id=_event_id(b_events[-1]))
    assert isinstance(resume, Resume)
    assert resume.replay == ()
    assert resume.live is None


def test_delete_forgets_the_events() -> None:
    client, _, _ = _two_streams()
    store = client.endpoint.event_store
    assert isinstance(store, InMemoryEventStore)
    assert len(store) > 0
    client.delete()
    assert len(store) == 0


def test_memory_store_bounds_per_stream_and_total() -> None:
    store = InMemoryEventStore(max_events_per_stream=3, max_events=5)
    for seq in range(10):
        store.append("s", EventId("1", seq), b"a%d" % seq)
    assert store.replay_after("s", EventId("1", 0)) == [b"a7", b"a8", b"a9"]
    for seq in range(3):
        store.append("s", EventId("2", seq), b"b%d" % seq)
    store.append("t", EventId("1", 0), b"t0")
    assert len(store) == 5
    # Oldest evicted first across streams and sessions: stream 1 lost a7, a8.
    assert store.replay_after("s", EventId("1", 0)) == [b"a9"]
    assert store.replay_after("s", EventId("2", 0)) == [b"b1", b"b2"]
    assert store.replay_after("t", EventId("1", 0)) == []
    assert store.replay_after("u", EventId("1", 0)) is None  # other session: nothing
    for seq in range(3, 9):
        store.append("t", EventId("1", seq), b"t%d" % seq)
    assert store.replay_after("s", EventId("1", 0)) is None  # fully evicted
    store.forget_session("t")
    assert store.replay_after("s", EventId("2", 0)) == [b"b1", b"b2"]
    store.forget_session("s")
    assert len(store) == 0
    with pytest.raises(ValueError, match="max_events must be an int >= 1"):
        InMemoryEventStore(max_events=0)


def test_memory_store_bounds_bytes_per_stream_and_total() -> None:
    store = InMemoryEventStore(max_bytes_per_stream=1000, max_bytes=2500)
    for seq in range(10):
        store.append("s", EventId("1", seq), bytes([65 + seq]) * 300)
    kept = store.replay_after("s", EventId("1", 0))
    assert kept is not None
    assert [e[0] for e in kept] == [72, 73, 74]  # the newest three: 900 bytes <= 1000
    assert store.size == 900
    store.append("s", EventId("2", 0), b"x" * 2000)  # larger than a stream may hold ...
    assert store.replay_after("s", EventId("2", -1)) == [b"x" * 2000]  # ... kept while newest
    store.append("s", EventId("2", 1), b"y")
    assert store.replay_after("s", EventId("2", -1)) == [b"y"]
    for seq in range(20):  # the total bound evicts oldest first, across sessions
        store.append("t", EventId(str(seq), 0), b"z" * 200)  # a stream each
    assert store.size <= 2500
    assert store.replay_after("s", EventId("1", 0)) is None  # stream 1 of s went first
    store.forget_session("t")
    store.forget_session("s")
    assert store.size == 0
    assert len(store) == 0
