"""A session's ``resources/subscribe`` holds on every instance sharing its store.

The test plays the adapter and the store as ``test_shared`` does, with a
store that also keeps each session's subscriptions and tells the instances
carrying its streams (what ``flowkit_redis`` does with its control bus).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import attrs

from flowkit.mcp import Endpoint, EndpointConfig, OpenListenStream, encode_notification
from flowkit.mcp._shared import (
    SUBSCRIPTIONS,
    Broadcast,
    Change,
    Control,
    Loaded,
    StateKeys,
    SubscriptionChanged,
    subscriptions_message,
)
from flowkit.mcp._stream import OutgoingStream

from ._client import Client, FakeClock, make_tools, sse_data
from ._features import make_resources
from .test_shared import DictStore, Instance

URI = "test://text"


class SubscribingStore(DictStore):
    """:class:`DictStore` plus each session's subscriptions, counted, told to their carriers."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: dict[str, set[str]] = {}
        self.versions: dict[str, int] = {}
        self.told: list[tuple[str, Control]] = []  # (instance, message) on the control bus

    def load_now(self, keys: StateKeys) -> Loaded:
        loaded = super().load_now(keys)
        if loaded.session is None:
            return loaded
        session_id = loaded.session.id
        session = attrs.evolve(
            loaded.session,
            subscriptions=frozenset(self.subscriptions.get(session_id, ())),
            subscriptions_version=self.versions.get(session_id, 0),
        )
        return attrs.evolve(loaded, session=session)

    def apply_now(self, changes: Sequence[Change]) -> None:
        for change in changes:
            if not isinstance(change, SubscriptionChanged):
                super().apply_now([change])
                continue
            sid = change.session_id
            if sid not in self.sessions:
                continue
            uris = self.subscriptions.setdefault(sid, set())
            if change.subscribed:
                uris.add(change.uri)
            else:
                uris.discard(change.uri)
            self.versions[sid] = version = self.versions.get(sid, 0) + 1
            carriers = {stream.rpartition(".")[0] for s, stream in self.attached if s == sid}
            data = subscriptions_message(sorted(uris), version)
            self.told += [(instance, Control(sid, data)) for instance in sorted(carriers)]

    def deliver(self, instances: dict[str, SubscribingInstance]) -> None:
        """What the bus carried so far, handed to each receiving endpoint."""
        told, self.told = self.told, []
        for name, control in told:
            assert instances[name].endpoint.receive_forwarded(control) is None


class SubscribingInstance(Instance):
    def __init__(self, name: str, store: DictStore, clock: FakeClock) -> None:
        self.store = store
        ids = itertools.count(1)
        self.endpoint = Endpoint(
            EndpointConfig(),
            make_tools(),
            resources=make_resources(),
            clock=clock,
            instance=name,
            new_session_id=lambda: f"{name}-{next(ids)}",
        )


def _cluster() -> tuple[SubscribingStore, dict[str, SubscribingInstance]]:
    store, clock = SubscribingStore(), FakeClock()
    return store, {name: SubscribingInstance(name, store, clock) for name in "abc"}


def _on(client: Client, instance: Instance) -> Client:
    moved = Client(instance, principal=client.principal, version=client.version)  # type: ignore[arg-type]
    moved.session_id = client.session_id
    return moved


def _listen(client: Client) -> OutgoingStream:
    action = client.get()
    assert isinstance(action, OpenListenStream)
    action.stream.open()
    return action.stream


def _subscribe(client: Client, uri: str = URI, method: str = "resources/subscribe") -> None:
    reply = client.request(method, {"uri": uri})
    assert reply.status == 200  # type: ignore[union-attr]


def _updated_on(instance: Instance, raised_on: Instance, uri: str = URI) -> list[OutgoingStream]:
    """The streams of ``instance`` that ``notifications/resources/updated`` reaches."""
    if instance is raised_on:
        events = instance.endpoint.resource_updated(uri)
    else:
        raised_on.endpoint.resource_updated(uri)
        broadcasts = [c for c in raised_on.endpoint.take_changes() if isinstance(c, Broadcast)]
        events = tuple(e for b in broadcasts for e in instance.endpoint.receive_broadcast(b))
    for _, event in events:
        assert sse_data(event)["params"] == {"uri": uri}
    return [stream for stream, _ in events]


def test_a_subscribe_on_one_instance_reaches_the_get_stream_on_another() -> None:
    store, on = _cluster()
    client = Client(on["a"])  # type: ignore[arg-type]
    client.initialize()
    listening = _listen(_on(client, on["b"]))
    on["b"].sync()
    quiet = Client(on["a"])  # type: ignore[arg-type]
    quiet.initialize()
    _listen(_on(quiet, on["b"]))  # never subscribes
    on["b"].sync()
    assert _updated_on(on["b"], on["a"]) == []

    _subscribe(client)
    assert [name for name, _ in store.told] == ["b"]  # the instance carrying its stream
    store.deliver(on)
    for raised_on in "abc":  # wherever it is raised, B's stream gets it
        assert _updated_on(on["b"], on[raised_on]) == [listening]
    assert _updated_on(on["b"], on["a"], "test://blob") == []

    _subscribe(client, method="resources/unsubscribe")
    store.deliver(on)
    for raised_on in "abc":
        assert _updated_on(on["b"], on[raised_on]) == []


def test_a_session_loaded_on_any_instance_has_its_subscriptions() -> None:
    store, on = _cluster()
    client = Client(on["a"])  # type: ignore[arg-type]
    client.initialize()
    _subscribe(client)
    assert store.told == []  # no stream carried anywhere: nobody to tell
    listening = _listen(_on(client, on["c"]))  # C loads the session with it
    assert _updated_on(on["c"], on["a"]) == [listening]


def test_the_instance_holding_the_get_stream_is_told_its_own_changes_too() -> None:
    store, on = _cluster()
    client = Client(on["b"])  # type: ignore[arg-type]
    client.initialize()
    listening = _listen(client)
    on["b"].sync()
    _subscribe(client)  # on B itself: at once, before the store answers
    assert _updated_on(on["b"], on["b"]) == [listening]
    assert [name for name, _ in store.told] == ["b"]
    store.deliver(on)
    assert _updated_on(on["b"], on["b"]) == [listening]


def test_of_two_views_of_the_subscriptions_the_newer_wins() -> None:
    store, on = _cluster()
    client = Client(on["a"])  # type: ignore[arg-type]
    client.initialize()
    listening = _listen(_on(client, on["b"]))
    on["b"].sync()
    assert client.session_id is not None
    stale = store.load_now(StateKeys(session_id=client.session_id)).session
    assert stale is not None
    _subscribe(client)  # version 1
    store.deliver(on)
    on["b"].endpoint.refresh(stale)  # a load read before it, handled after: ignored
    assert _updated_on(on["b"], on["a"]) == [listening]
    _subscribe(client, method="resources/unsubscribe")  # version 2
    [(_, newer)] = store.told
    _subscribe(client)  # version 3
    store.deliver(on)
    assert on["b"].endpoint.receive_forwarded(newer) is None  # late on the bus: ignored
    assert _updated_on(on["b"], on["a"]) == [listening]


def test_a_get_opened_while_a_subscribe_lands_elsewhere_learns_it_by_reading_again() -> None:
    store, on = _cluster()
    client = Client(on["a"])  # type: ignore[arg-type]
    client.initialize()
    assert client.session_id is not None
    keys = StateKeys(session_id=client.session_id)
    early = store.load_now(keys)  # B's load for the GET ...
    _subscribe(client)  # ... then A serves the subscribe: no stream carried yet, nobody told
    assert store.told == []
    moved = _on(client, on["b"])
    headers = [h for h in moved.headers() if h[0] not in (b"accept", b"content-type")]
    headers.append((b"accept", b"text/event-stream"))
    action = on["b"].endpoint.receive_request("GET", headers, b"", None, loaded=early)
    assert isinstance(action, OpenListenStream)
    action.stream.open()
    on["b"].sync()  # the stream is stored as carried here ...
    assert _updated_on(on["b"], on["a"]) == []
    record = store.load_now(keys).session  # ... then read again (SharedState.listening)
    assert record is not None
    on["b"].endpoint.refresh(record)
    assert _updated_on(on["b"], on["a"]) == [action.stream]


def test_a_malformed_subscriptions_message_changes_nothing() -> None:
    store, on = _cluster()
    client = Client(on["a"])  # type: ignore[arg-type]
    client.initialize()
    listening = _listen(_on(client, on["b"]))
    on["b"].sync()
    _subscribe(client)
    store.deliver(on)
    assert client.session_id is not None
    bad: list[dict[str, Any]] = [
        {"uris": "test://text", "version": 9},
        {"uris": [1], "version": 9},
        {"uris": [], "version": "9"},
        {"uris": [], "version": True},
    ]
    for params in bad:
        data = Control(client.session_id, encode_notification(SUBSCRIPTIONS, params))
        assert on["b"].endpoint.receive_forwarded(data) is None
    assert (
        on["b"].endpoint.receive_forwarded(Control("nobody", subscriptions_message([], 9))) is None
    )
    assert _updated_on(on["b"], on["a"]) == [listening]


def test_an_endpoint_that_is_not_shared_journals_no_subscription() -> None:
    endpoint = Endpoint(EndpointConfig(), make_tools(), resources=make_resources())
    client = Client(endpoint)
    client.initialize()
    listening = _listen(client)
    _subscribe(client)
    assert endpoint.take_changes() == ()
    [(stream, _)] = endpoint.resource_updated(URI)
    assert stream is listening
