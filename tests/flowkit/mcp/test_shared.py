"""Two endpoints share one store through the core's state boundary (``_shared``).

The test plays the adapter: before each request it loads what
``state_keys`` names from a dict-backed store, and after it (and after a
stream emitted) it writes ``take_changes``. Any instance then serves any
request of any session: lookup with its principal, the cap, running calls,
stored events and their replay, DELETE.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest

from flowkit.mcp import (
    Action,
    Answer,
    Cancel,
    EndpointConfig,
    InMemoryEventStore,
    OpenListenStream,
    Reply,
    Resume,
    StartCall,
    tool_result,
)
from flowkit.mcp._asks import roots_request
from flowkit.mcp._errors import CALL_LOST, HEADER_MISMATCH
from flowkit.mcp._headers import may_open_session, parse_head
from flowkit.mcp._jsonrpc import RequestId
from flowkit.mcp._sessions import SessionState
from flowkit.mcp._shared import (
    EVENTS_LOST,
    AnswerForwarded,
    Broadcast,
    CallEnded,
    CallStarted,
    CancelForwarded,
    Change,
    Control,
    EventAppended,
    Loaded,
    SessionClosed,
    SessionRecord,
    SessionSaved,
    SessionTouched,
    SharedStore,
    StateKeys,
    StreamAttached,
    StreamDetached,
    StreamEnded,
)
from flowkit.mcp._sse import EventId

from ._client import Client, FakeClock, body_json, make_endpoint, sse_data


class DictStore:
    """A shared store in one dict per kind of state (what Redis would hold)."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionRecord] = {}
        self.calls: dict[tuple[str, RequestId], str] = {}
        self.events: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
        self.attached: set[tuple[str, str]] = set()
        self.ended: set[tuple[str, str]] = set()
        # What the bus would carry.
        self.forwarded: list[CancelForwarded | AnswerForwarded | Broadcast] = []

    def load_now(self, keys: StateKeys) -> Loaded:
        session = self.sessions.get(keys.session_id) if keys.session_id else None
        if session is not None:
            running = frozenset(rid for sid, rid in self.calls if sid == session.id)
            attached = frozenset(st for sid, st in self.attached if sid == session.id)
            session = attrs.evolve(session, running=running, attached=attached)
        replay, last, ended = None, -1, False
        if keys.resume is not None and keys.session_id is not None:
            key = (keys.session_id, keys.resume.stream_id)
            stored = self.events.get(key)
            if stored is not None:
                replay = [data for seq, data in stored if seq > keys.resume.seq]
                last = max([keys.resume.seq, *(seq for seq, _ in stored)])
                ended = key in self.ended
        return Loaded(
            session=session,
            replay=replay,
            live_sessions=len(self.sessions) if keys.count_sessions else 0,
            replay_last=last,
            replay_ended=ended,
        )

    def apply_now(self, changes: Sequence[Change]) -> None:
        for change in changes:
            if isinstance(change, SessionSaved):
                self.sessions[change.record.id] = change.record
            elif isinstance(change, SessionTouched):
                record = self.sessions[change.session_id]
                self.sessions[change.session_id] = attrs.evolve(record, last_active=change.now)
            elif isinstance(change, SessionClosed):
                self.sessions.pop(change.session_id, None)
                self.calls = {k: v for k, v in self.calls.items() if k[0] != change.session_id}
                self.events = {k: v for k, v in self.events.items() if k[0] != change.session_id}
            elif isinstance(change, CallStarted):
                self.calls[change.session_id, change.request_id] = change.stream_id
            elif isinstance(change, CallEnded):
                self.calls.pop((change.session_id, change.request_id), None)
            elif isinstance(change, StreamAttached):
                self.attached.add((change.session_id, change.stream_id))
            elif isinstance(change, StreamDetached):
                self.attached.discard((change.session_id, change.stream_id))
            elif isinstance(change, EventAppended):
                key = (change.session_id, change.stream_id)
                assert key not in self.ended, "an event after its stream's end"
                self.events.setdefault(key, []).append((change.seq, change.data))
            elif isinstance(change, StreamEnded):
                self.ended.add((change.session_id, change.stream_id))
            elif isinstance(change, CancelForwarded | AnswerForwarded | Broadcast):
                self.forwarded.append(change)

    async def load(self, keys: StateKeys) -> Loaded:
        return self.load_now(keys)

    async def apply(self, changes: Sequence[Change]) -> None:
        self.apply_now(changes)

    @asynccontextmanager
    async def follow(self, session_id: str, stream_id: str, after: int) -> AsyncIterator[Any]:
        raise NotImplementedError("the adapter follows; tests/flowkit_redis covers it")
        yield

    async def control(self, deliver: Any) -> None:
        raise NotImplementedError("the adapter listens; tests/integration/flowkit_redis covers it")


class Instance:
    """One server instance: its endpoint, kept in step with the store around each request."""

    def __init__(self, name: str, store: DictStore, clock: FakeClock, **config: Any) -> None:
        self.store = store
        ids = itertools.count(1)
        self.endpoint = make_endpoint(
            EndpointConfig(**config),
            clock=clock,
            instance=name,
            new_session_id=lambda: f"{name}-{next(ids)}",
        )

    def receive_request(
        self, method: str, headers: Any, body: bytes = b"", principal: str | None = None
    ) -> Action:
        keys = self.endpoint.state_keys(method, headers)
        loaded = self.store.load_now(keys) if keys is not None else None
        action = self.endpoint.receive_request(method, headers, body, principal, loaded=loaded)
        self.sync()
        return action

    def sync(self) -> None:
        """What the adapter does before writing bytes a stream produced."""
        self.store.apply_now(self.endpoint.take_changes())


def _cluster(**config: Any) -> tuple[DictStore, Instance, Instance]:
    store, clock = DictStore(), FakeClock()
    return store, Instance("a", store, clock, **config), Instance("b", store, clock, **config)


def _client(instance: Instance, **kw: Any) -> Client:
    return Client(instance, **kw)  # type: ignore[arg-type]


def _on(client: Client, instance: Instance) -> Client:
    """The same client, its next requests landing on another instance."""
    moved = _client(instance, principal=client.principal, version=client.version)
    moved.session_id = client.session_id
    return moved


def test_any_instance_serves_any_request_of_a_session() -> None:
    _, a, b = _cluster()
    client = _client(a)
    assert client.initialize().status == 200  # initialize and initialized on A
    on_b = _on(client, b)
    # B has never seen the session: its head check must not refuse it before the load.
    assert b.endpoint.check_request_head("POST", on_b.headers()) is None
    listed = on_b.request("tools/list")
    assert isinstance(listed, Reply)
    assert listed.status == 200
    assert isinstance(on_b.start("count", {"n": 1}), StartCall)
    copy = b.endpoint.sessions.get_any(client.session_id or "")
    assert copy is not None
    assert copy.state is SessionState.READY  # initialized on A, stepped through B's table


def test_the_principal_binding_holds_on_every_instance() -> None:
    _, a, b = _cluster()
    alice = _client(a, principal="alice")
    alice.initialize()
    mallory = _on(alice, b)
    mallory.principal = "mallory"
    reply = mallory.request("ping")
    assert isinstance(reply, Reply)
    assert reply.status == 404
    assert _on(alice, b).request("ping").status == 200  # type: ignore[union-attr]


def test_delete_on_one_instance_is_404_on_the_others() -> None:
    store, a, b = _cluster()
    client = _client(a)
    client.initialize()
    assert _on(client, b).request("ping").status == 200  # type: ignore[union-attr]
    assert client.delete().status == 200  # type: ignore[union-attr]
    assert store.sessions == {}
    reply = _on(client, b).request("ping")
    assert isinstance(reply, Reply)
    assert reply.status == 404


def test_the_session_cap_counts_every_instance() -> None:
    _, a, b = _cluster(max_sessions=2)
    assert _client(a).initialize().status == 200
    assert _client(b).initialize().status == 200
    assert _client(b).initialize().status == 503
    assert _client(a).initialize().status == 503


def test_only_a_head_that_may_open_a_session_counts_the_sessions() -> None:
    """The count is a store read per request (a Redis round trip): a
    stateless-era call names another method in its head and skips it."""
    _, a, _ = _cluster()
    base = _client(a).headers()

    def counts(method: str, *extra: tuple[bytes, bytes]) -> bool:
        keys = a.endpoint.state_keys(method, [*base, *extra])
        assert keys is not None
        return keys.count_sessions

    assert counts("POST")
    assert counts("POST", (b"mcp-method", b"initialize"))
    assert not counts("POST", (b"mcp-method", b"tools/call"))
    assert not counts("POST", (b"Mcp-Method", b"server/discover"))
    assert not counts("POST", (b"mcp-session-id", b"a-1"))
    assert not counts("GET")


@pytest.mark.parametrize(
    ("headers", "opens"),
    [
        ([(b"content-type", b"application/json")], True),  # a 2025-era initialize
        ([(b"mcp-method", b"initialize")], True),
        ([(b"Mcp-Method", b" initialize ")], True),  # any case of name, value stripped
        ([(b"mcp-method", b"Initialize")], False),  # method names are case-sensitive
        ([(b"MCP-Session-Id", b"abc")], False),  # a session's call, on a new connection
        ([(b"mcp-protocol-version", b"2026-07-28"), (b"mcp-method", b"tools/call")], False),
        ([(b"x-mcp-method", b"tools/call")], True),  # another header's name
    ],
)
def test_may_open_session_reads_the_session_and_the_method(
    headers: list[tuple[bytes, bytes]], opens: bool
) -> None:
    """The one rule for the count here and for flowkit serve's first-request line."""
    head = parse_head("POST", [(b"host", b"127.0.0.1"), *headers])
    assert may_open_session(head) is opens


def test_an_initialize_under_another_methods_header_is_refused_not_uncounted() -> None:
    _, a, b = _cluster(max_sessions=1)
    assert _client(a).initialize().status == 200
    params = {"protocolVersion": "2025-11-25", "capabilities": {}}
    for endpoint in (b, make_endpoint()):
        client = Client(endpoint)  # type: ignore[arg-type]
        reply = client.request("initialize", params, extra=[(b"mcp-method", b"tools/call")])
        assert isinstance(reply, Reply)
        assert reply.status == 400
        error = body_json(reply)["error"]
        assert error["code"] == HEADER_MISMATCH
        assert "Mcp-Method 'tools/call'" in error["message"]
    named = _client(b).request("initialize", params, extra=[(b"mcp-method", b"initialize")])
    assert isinstance(named, Reply)
    assert named.status == 503  # the cap still counts a's session


def test_a_request_id_running_elsewhere_is_in_flight_here() -> None:
    _, a, b = _cluster()
    client = _client(a)
    client.initialize()
    assert isinstance(client.start(id=5), StartCall)
    reply = _on(client, b).call("count", {"n": 1}, id=5)
    assert isinstance(reply, Reply)
    assert body_json(reply)["error"]["code"] == -32600


def test_events_stored_on_one_instance_are_replayed_on_another() -> None:
    store, a, b = _cluster()
    client = _client(a)
    client.initialize()
    on_b = _on(client, b)
    call = on_b.start("count", {"n": 3}, id=7, progress_token="p")
    sent = [call.stream.open()[2]]
    for i in (1, 2, 3):
        sent.append(call.stream.progress(i))
    sent.append(call.stream.result(tool_result("done")))
    b.sync()  # stored before the bytes are written
    b.endpoint.stream_finished(call.stream)  # B's response ended after the result
    b.sync()
    assert store.calls == {}  # the call ended: its request id is free
    assert call.stream.stream_id.startswith("b.")  # ids of B's streams are B's
    last_seen = sent[1].split(b"\n", 1)[0].removeprefix(b"id: ")
    resume = client.get(last_event_id=last_seen)  # on A
    assert isinstance(resume, Resume)
    assert list(resume.replay) == sent[2:]
    assert resume.live is None
    assert sse_data(resume.replay[-1])["id"] == 7


def test_log_level_set_on_one_instance_holds_on_another() -> None:
    _, a, b = _cluster()
    client = _client(a)
    client.initialize()
    assert client.request("logging/setLevel", {"level": "error"}).status == 200  # type: ignore[union-attr]
    call = _on(client, b).start("count", {"n": 1})
    call.stream.open()
    assert call.stream.log("warning", "quiet") is None
    assert call.stream.log("error", "loud") is not None


def test_local_expiry_only_drops_the_local_copy() -> None:
    store, a, _ = _cluster(session_idle_timeout=10)
    client = _client(a)
    client.initialize()
    a.endpoint.state.clock.advance(11)  # type: ignore[attr-defined]
    assert a.endpoint.expire_sessions() == [client.session_id]
    assert client.session_id in store.sessions  # the store's TTL decides, not A
    assert client.request("ping").status == 200  # type: ignore[union-attr]


async def test_the_store_is_driven_through_the_async_interface() -> None:
    store: SharedStore = DictStore()
    a = make_endpoint(instance="a")
    headers = Client(a).headers()
    keys = a.state_keys("POST", headers)
    assert keys == StateKeys(count_sessions=True)
    loaded = await store.load(keys)
    init = Client(a).headers()
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}'
    )
    reply = a.receive_request("POST", init, body, loaded=loaded)
    assert isinstance(reply, Reply)
    assert reply.status == 200
    changes = a.take_changes()
    assert [type(c) for c in changes] == [SessionSaved]
    await store.apply(changes)
    assert a.take_changes() == ()


def test_an_endpoint_that_is_not_shared_needs_nothing_read_or_written() -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    assert endpoint.state_keys("GET", client.headers()) is None
    client.start()
    assert endpoint.take_changes() == ()
    assert isinstance(endpoint.event_store, InMemoryEventStore)


def test_a_stream_carried_on_one_instance_cannot_be_resumed_on_another() -> None:
    _, a, b = _cluster()
    client = _client(a)
    client.initialize()
    call = _on(client, b).start("count", {"n": 3}, progress_token="p")
    sent = [call.stream.open()[2], call.stream.progress(1)]
    b.sync()
    last_seen = sent[0].split(b"\n", 1)[0].removeprefix(b"id: ")
    busy = client.get(last_event_id=last_seen)  # on A, while B's response carries it
    assert isinstance(busy, Reply)
    assert busy.status == 409
    b.endpoint.stream_finished(call.stream, disconnected=True)
    b.sync()
    resume = client.get(last_event_id=last_seen)
    assert isinstance(resume, Resume)
    assert list(resume.replay) == sent[1:]


def _seen(event: bytes) -> bytes:
    return event.split(b"\n", 1)[0].removeprefix(b"id: ")


def test_a_resume_elsewhere_of_a_running_call_follows_the_store() -> None:
    """The call runs on B; A's resume replays what is stored, then follows the store."""
    store, a, b = _cluster()
    client = _client(a)
    client.initialize()
    call = _on(client, b).start("count", {"n": 3}, progress_token="p")
    sent = [call.stream.open()[2], call.stream.progress(1), call.stream.progress(2)]
    b.sync()
    b.endpoint.stream_finished(call.stream, disconnected=True)  # B's client left
    b.sync()
    resume = client.get(last_event_id=_seen(sent[0]))  # on A
    assert isinstance(resume, Resume)
    assert list(resume.replay) == sent[1:]
    assert (resume.live, resume.follow) == (None, 2)  # follow after seq 2
    assert (client.session_id, call.stream.stream_id) in store.attached
    again = client.get(last_event_id=_seen(sent[0]))  # a second resume while A follows
    assert isinstance(again, Reply)
    assert again.status == 409
    on_b = _on(client, b).get(last_event_id=_seen(sent[0]))  # B knows A follows it
    assert isinstance(on_b, Reply)
    assert on_b.status == 409
    a.endpoint.follow_finished(client.session_id, call.stream.stream_id)  # type: ignore[arg-type]
    a.sync()
    assert (client.session_id, call.stream.stream_id) not in store.attached
    assert isinstance(client.get(last_event_id=_seen(sent[0])), Resume)


def test_a_calls_end_is_stored_after_its_final_event_and_ends_following() -> None:
    store, a, b = _cluster()
    client = _client(a)
    client.initialize()
    call = _on(client, b).start("count", {"n": 1}, progress_token="p")
    primed = call.stream.open()[2]
    b.sync()
    b.endpoint.stream_finished(call.stream, disconnected=True)
    b.sync()
    call.stream.progress(1)
    call.stream.result(tool_result("done"))
    changes = b.endpoint.take_changes()
    kinds = [type(c).__name__ for c in changes]
    assert kinds[-2:] == ["EventAppended", "StreamEnded"]  # the end after the final event
    assert "CallEnded" in kinds
    store.apply_now(changes)
    resume = client.get(last_event_id=_seen(primed))  # on A: the call is over
    assert isinstance(resume, Resume)
    assert resume.follow is None  # nothing will follow: the replay is the response
    assert sse_data(resume.replay[-1])["result"]["content"][0]["text"] == "done"


def test_a_resume_on_the_calls_own_instance_follows_the_store_too() -> None:
    """Its events while detached may be on their way to the store: never the local stream."""
    _, a, _ = _cluster(detached_call_grace=30)
    client = _client(a)
    client.initialize()
    call = client.start("count", {"n": 3}, progress_token="p")
    primed = call.stream.open()[2]
    a.sync()
    a.endpoint.stream_finished(call.stream, disconnected=True)
    a.sync()
    assert call.stream in a.endpoint.state.detached_calls  # the grace period runs
    resume = client.get(last_event_id=_seen(primed))
    assert isinstance(resume, Resume)
    assert (resume.live, resume.follow) == (None, 0)
    assert call.stream.detached  # not attached locally: the store is followed
    assert call.stream not in a.endpoint.state.detached_calls  # its client is back
    assert a.endpoint.sessions.get_any(client.session_id).busy  # type: ignore[arg-type,union-attr]
    a.endpoint.follow_finished(client.session_id, call.stream.stream_id)  # type: ignore[arg-type]
    assert call.stream in a.endpoint.state.detached_calls  # and runs again


def test_a_cancelled_call_ends_its_stream_without_a_final_event() -> None:
    store, a, _ = _cluster()
    client = _client(a)
    client.initialize()
    call = client.start("count", {"n": 3}, id=4, progress_token="p")
    call.stream.open()
    a.sync()
    client.notify("notifications/cancelled", {"requestId": 4})
    assert call.stream.cancelled
    a.sync()
    assert (client.session_id, call.stream.stream_id) in store.ended


def test_abandoned_streams_end_with_an_error_filed_after_what_was_stored() -> None:
    """The adapter dropped their unstored events: each call's replay ends with an error."""
    store, a, _ = _cluster()
    client = _client(a)
    client.initialize()
    call = client.start("count", {"n": 3}, progress_token="p")
    primed = call.stream.open()[2]
    a.sync()
    a.endpoint.stream_finished(call.stream, disconnected=True)
    a.sync()
    call.stream.progress(1)
    a.endpoint.take_changes()  # lost: the store was down and the bound was reached
    sid, stream_id = client.session_id or "", call.stream.stream_id
    stopped = a.endpoint.abandon_streams({(sid, stream_id), (sid, "gone")}, "lost")
    assert stopped == (call.stream,)
    assert call.stream.finished
    assert a.endpoint.abandon_streams({(sid, stream_id)}, "again") == ()  # already over
    a.sync()
    assert (sid, stream_id) in store.ended
    resume = client.get(last_event_id=_seen(primed))
    assert isinstance(resume, Resume)
    assert resume.follow is None
    (error,) = [sse_data(event) for event in resume.replay]
    assert error["error"] == {"code": -32000, "message": "lost"}


def test_an_abandoned_get_stream_files_a_marker_and_an_ended_one_is_not_given_up() -> None:
    """A GET stream has no response to end with an error: it files the events-lost marker."""
    _, a, _ = _cluster()
    client = _client(a)
    client.initialize()
    client.request(
        "logging/setLevel", {"level": "critical"}
    )  # the marker is sent whatever the level
    listen = client.get()
    assert isinstance(listen, OpenListenStream)
    primed = listen.stream.open()[2]
    a.sync()
    listen.stream.notify("notifications/tools/list_changed")
    a.endpoint.take_changes()  # lost: the store was down and the bound was reached
    sid, stream_id = client.session_id or "", listen.stream.stream_id
    assert a.endpoint.abandon_streams({(sid, stream_id)}, "lost") == (listen.stream,)
    assert listen.stream.cancelled
    a.sync()
    resume = client.get(last_event_id=_seen(primed))
    assert isinstance(resume, Resume)
    (marker,) = [sse_data(event) for event in resume.replay]
    assert marker["method"] == "notifications/message"
    assert marker["params"]["level"] == "error"
    assert marker["params"]["data"] == {"error": EVENTS_LOST, "message": "lost"}
    # A stream that already ended cannot be given up: its kept events must stay.
    call = client.start("count", {"n": 1}, progress_token="p")
    call.stream.open()
    call.stream.complete(tool_result("done"))
    assert a.endpoint.abandon_streams({(sid, call.stream.stream_id)}, "lost") == ()


def test_a_call_followed_elsewhere_keeps_its_grace_period_on_its_instance() -> None:
    """A's call, its client following it on B: A learns it from the store (refresh)."""
    store, a, b = _cluster(detached_call_grace=30)
    client = _client(a)
    client.initialize()
    call = client.start("count", {"n": 3}, progress_token="p")
    primed = call.stream.open()[2]
    a.sync()
    a.endpoint.stream_finished(call.stream, disconnected=True)  # A's client left at t=0
    a.sync()
    resume = _on(client, b).get(last_event_id=_seen(primed))  # and follows it on B
    assert isinstance(resume, Resume)
    assert resume.follow == 0
    b.sync()
    clock = a.endpoint.state.clock
    clock.advance(20)  # type: ignore[attr-defined]
    record = store.load_now(StateKeys(session_id=client.session_id)).session
    assert record is not None
    a.endpoint.refresh(record)  # the heartbeat's read: B carries the stream
    clock.advance(20)  # type: ignore[attr-defined]  # 40 s since the client left A
    assert a.endpoint.expire() == ()
    assert not call.stream.finished
    clock.advance(11)  # type: ignore[attr-defined]  # 31 s since the last refresh
    assert a.endpoint.expire() == (call.stream,)


def test_a_cancel_for_a_call_on_another_instance_is_forwarded_and_stops_it_there() -> None:
    store, a, b = _cluster()
    client = _client(a)
    client.initialize()
    call = client.start(id=5)
    assert isinstance(call, StartCall)
    on_b = _on(client, b)
    assert on_b.notify("notifications/cancelled", {"requestId": 5}) == Reply(202)
    assert on_b.notify("notifications/cancelled", {"requestId": 6}) == Reply(202)  # runs nowhere
    assert on_b.notify("notifications/cancelled", {"requestId": [5]}) == Reply(202)  # malformed
    [forwarded] = store.forwarded
    assert isinstance(forwarded, CancelForwarded)
    assert (forwarded.session_id, forwarded.request_id) == (client.session_id, 5)
    assert client.session_id is not None
    there = a.endpoint.receive_forwarded(Control(client.session_id, forwarded.data))
    assert isinstance(there, Cancel)
    assert there.stream is call.stream
    assert call.stream.finished  # it emits nothing more: no response is sent
    # A repeat finds nothing to stop.
    assert a.endpoint.receive_forwarded(Control(client.session_id, forwarded.data)) is None


def test_an_answer_posted_elsewhere_is_forwarded_to_the_asking_instance_once() -> None:
    store, a, b = _cluster()
    client = _client(a)
    client.initialize()
    call = client.start(id=5)
    assert isinstance(call, StartCall)
    call.stream.open()
    ask_id, _ = a.endpoint.ask(call.stream, roots_request())
    answer = {"jsonrpc": "2.0", "id": ask_id, "result": {"roots": []}}
    assert _on(client, b).post(answer) == Reply(202)
    assert _on(client, b).post({**answer, "id": "flowkit-zz"}) == Reply(202)  # names no stream
    [forwarded] = store.forwarded
    assert isinstance(forwarded, AnswerForwarded)
    assert forwarded.instance == "a"
    assert client.session_id is not None
    delivered = a.endpoint.receive_forwarded(Control(client.session_id, forwarded.data))
    assert isinstance(delivered, Answer)
    assert (delivered.stream, delivered.ask_id) == (call.stream, ask_id)
    assert delivered.response.result == {"roots": []}
    # Twice (or late): ignored, as on one instance.
    assert a.endpoint.receive_forwarded(Control(client.session_id, forwarded.data)) is None


def test_a_session_deleted_elsewhere_cancels_its_calls_here() -> None:
    _, a, b = _cluster()
    client = _client(a)
    client.initialize()
    call = client.start(id=5)
    assert isinstance(call, StartCall)
    assert _on(client, b).delete().status == 200  # type: ignore[union-attr]
    assert client.session_id is not None
    closed = a.endpoint.receive_forwarded(Control(client.session_id))
    assert isinstance(closed, Reply)
    assert closed.cancelled == (call.stream,)
    assert a.endpoint.receive_forwarded(Control(client.session_id)) is None  # already gone


def test_a_call_lost_with_its_instance_ends_with_the_lost_call_error_stored() -> None:
    store, a, b = _cluster()
    client = _client(a)
    client.initialize()
    call = client.start(id=5)
    assert isinstance(call, StartCall)
    call.stream.open()
    a.sync()
    assert client.session_id is not None
    stream_id = call.stream.stream_id
    b.endpoint.call_lost(client.session_id, stream_id, 5, 0)  # B's follower saw A's lease go
    b.sync()
    key = (client.session_id, stream_id)
    assert key in store.ended
    seq, event = store.events[key][-1]
    assert seq == 1
    assert event.split(b"\n", 1)[0] == b"id: " + EventId(stream_id, 1).encode()
    error = sse_data(event)
    assert error["id"] == 5
    assert error["error"]["code"] == CALL_LOST
    assert error["error"]["data"] == {"instance": "a"}


def test_a_list_change_raised_on_one_instance_is_written_by_the_others_to_their_streams() -> None:
    store, a, b = _cluster(tools_list_changed=True)
    client = _on(_client(a), b)
    client.initialize()
    listening = client.get()
    assert not isinstance(listening, Reply)
    listening.stream.open()  # type: ignore[union-attr]
    assert a.endpoint.list_changed("tools") == ()  # no listener on A
    a.endpoint.resource_updated("test://doc")
    a.sync()
    changed, updated = store.forwarded
    assert isinstance(changed, Broadcast)
    assert isinstance(updated, Broadcast)
    [(stream, event)] = b.endpoint.receive_broadcast(changed)
    assert stream is listening.stream  # type: ignore[union-attr]
    assert sse_data(event) == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    b.sync()
    assert len(store.forwarded) == 2  # received, not broadcast again
    assert b.endpoint.receive_broadcast(updated) == ()  # B's session subscribed to nothing
    assert b.endpoint.receive_broadcast(Broadcast(b"{nonsense")) == ()
