"""Session lifecycle: 2025-11-25 "Lifecycle" and "Session Management"."""

from __future__ import annotations

import orjson
import pytest

from flowkit.mcp import (
    Endpoint,
    EndpointConfig,
    LocalProtocolError,
    OpenListenStream,
    Reply,
    StartCall,
)
from flowkit.mcp._sessions import SESSION_TRANSITIONS, SessionEvent, SessionState

from ._client import Client, FakeClock, body_json, make_endpoint


def test_initialize_result_and_session_header() -> None:
    """ "Initialization": protocolVersion, capabilities, serverInfo, instructions."""
    endpoint = make_endpoint(EndpointConfig(instructions="be nice", server_title="T"))
    client = Client(endpoint)
    reply = client.initialize()
    result = body_json(reply)["result"]
    assert result["protocolVersion"] == "2025-11-25"
    assert result["capabilities"] == {"tools": {"listChanged": False}, "logging": {}}
    assert result["serverInfo"] == {"name": "flowkit", "version": "0.1.0", "title": "T"}
    assert result["instructions"] == "be nice"
    assert client.session_id == "session-1"
    assert endpoint.sessions.get("session-1", None) is not None


@pytest.mark.parametrize(
    ("requested", "negotiated"),
    [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2024-11-05", "2025-11-25"),
        ("9999", "2025-11-25"),
    ],
)
def test_version_negotiation(requested: str, negotiated: str) -> None:
    """ "Version Negotiation": same version if supported, else our latest."""
    endpoint = make_endpoint()
    client = Client(endpoint, version=requested)
    client.initialize()
    assert client.version == negotiated
    session = endpoint.sessions.get(client.session_id or "", None)
    assert session is not None
    assert session.version == negotiated


def test_initialize_without_version_is_invalid_params_and_no_session() -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    reply = client.request("initialize", {"capabilities": {}})
    assert isinstance(reply, Reply)
    assert reply.status == 400
    assert len(endpoint.sessions) == 0


def test_default_session_ids_are_csprng_visible_ascii() -> None:
    from flowkit.mcp import Endpoint

    endpoint = Endpoint(clock=FakeClock())
    ids = set()
    for _ in range(20):
        client = Client(endpoint)
        client.initialize()
        assert client.session_id is not None
        assert len(client.session_id) >= 32
        assert all(0x21 <= ord(c) <= 0x7E for c in client.session_id)
        ids.add(client.session_id)
    assert len(ids) == 20


def test_bad_session_id_factory_is_our_bug() -> None:
    endpoint = make_endpoint(new_session_id=lambda: "has space")
    with pytest.raises(LocalProtocolError):
        Client(endpoint).initialize()


def test_initialized_notification_moves_to_ready() -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    session = endpoint.sessions.get_any(client.session_id or "")
    assert session is not None
    assert session.state is SessionState.READY
    assert client.notify("notifications/initialized") == Reply(202)


def test_transition_table_is_closed_on_closed() -> None:
    assert not any(state is SessionState.CLOSED for state, _ in SESSION_TRANSITIONS)
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    session = endpoint.sessions.get_any(client.session_id or "")
    assert session is not None
    endpoint.close_session(session.id)
    with pytest.raises(LocalProtocolError):
        session.handle(SessionEvent.REQUEST)


def test_ping_and_client_responses_and_unknown_notifications() -> None:
    """ "Ping": respond promptly with {}; notifications/responses -> 202 (checklist A4)."""
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    reply = client.request("ping", id="p")
    assert isinstance(reply, Reply)
    assert body_json(reply) == {"jsonrpc": "2.0", "id": "p", "result": {}}
    assert client.post({"jsonrpc": "2.0", "id": 99, "result": {}}) == Reply(202)
    assert client.notify("notifications/whatever") == Reply(202)


def test_unknown_method_is_method_not_found() -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    reply = client.request("tasks/list", id=5)
    assert isinstance(reply, Reply)
    assert body_json(reply) == {
        "jsonrpc": "2.0",
        "id": 5,
        "error": {"code": -32601, "message": "Method not found: tasks/list"},
    }


def test_delete_frees_the_session_then_404() -> None:
    """ "Session Management" 3 & 5: DELETE ends it; afterwards 404."""
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    reply = client.delete()
    assert isinstance(reply, Reply)
    assert reply.status == 200
    assert reply.ends_session == client.session_id
    assert len(endpoint.sessions) == 0
    for action in (client.request("ping"), client.get(), client.delete()):
        assert isinstance(action, Reply)
        assert action.status == 404


def test_delete_cancels_calls_in_flight() -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    call = client.start()
    call.stream.open()
    listen = client.get()
    reply = client.delete()
    assert isinstance(reply, Reply)
    assert call.stream in reply.cancelled
    assert call.stream.cancelled
    assert call.stream.result({"content": []}) == b""
    assert len(reply.cancelled) == 2
    assert listen is not None


def test_idle_expiry_with_fake_clock() -> None:
    """Checklist B2 S: idle expiry on by default (30 minutes)."""
    clock = FakeClock()
    endpoint = make_endpoint(clock=clock)
    assert endpoint.config.session_idle_timeout == 1800
    client = Client(endpoint)
    client.initialize()
    assert endpoint.next_deadline() == clock.now + 1800
    clock.advance(1000)
    client.request("ping")  # activity postpones expiry
    clock.advance(1799)
    assert endpoint.expire_sessions() == []
    clock.advance(1)
    assert endpoint.expire_sessions() == [client.session_id]
    assert endpoint.next_deadline() is None
    reply = client.request("ping")
    assert isinstance(reply, Reply)
    assert reply.status == 404


def test_busy_sessions_do_not_expire_and_idle_time_starts_after_the_call() -> None:
    clock = FakeClock()
    endpoint = make_endpoint(clock=clock)
    client = Client(endpoint)
    client.initialize()
    call = client.start()
    call.stream.open()
    clock.advance(10_000)
    assert endpoint.expire_sessions() == []
    assert endpoint.next_deadline() is None
    call.stream.result({"content": []})
    assert endpoint.next_deadline() == clock.now + 1800
    clock.advance(1799)
    assert endpoint.expire_sessions() == []
    clock.advance(1)
    assert endpoint.expire_sessions() == [client.session_id]


def test_open_get_stream_keeps_a_session_alive() -> None:
    clock = FakeClock()
    endpoint = make_endpoint(clock=clock)
    client = Client(endpoint)
    client.initialize()
    listen = client.get()
    assert isinstance(listen, OpenListenStream)
    listen.stream.open()
    clock.advance(1_000_000)
    assert endpoint.expire_sessions() == []
    endpoint.stream_finished(listen.stream, disconnected=True)
    clock.advance(1800)
    assert endpoint.expire_sessions() == [client.session_id]


def test_session_cap_503_with_retry_after() -> None:
    clock = FakeClock()
    endpoint = make_endpoint(EndpointConfig(max_sessions=2, session_idle_timeout=100), clock=clock)
    first, second = Client(endpoint), Client(endpoint)
    first.initialize()
    clock.advance(40)
    second.initialize()
    third = Client(endpoint)
    reply = third.initialize()
    assert reply.status == 503
    assert dict(reply.headers)[b"retry-after"] == b"60"  # when `first` will expire
    assert third.session_id is None
    clock.advance(60)  # first is now expired: initialize reaps it and succeeds
    assert third.initialize().status == 200
    assert len(endpoint.sessions) == 2


def test_session_cap_when_everyone_is_busy() -> None:
    endpoint = make_endpoint(EndpointConfig(max_sessions=1, busy_retry_after=7))
    busy = Client(endpoint)
    busy.initialize()
    assert isinstance(busy.start(), StartCall)
    reply = Client(endpoint).initialize()
    assert reply.status == 503
    assert dict(reply.headers)[b"retry-after"] == b"7"


def test_sessions_are_bound_to_their_principal() -> None:
    """Another principal presenting a valid session id gets 404 (hijacking mitigation)."""
    endpoint = make_endpoint()
    alice = Client(endpoint, principal="alice")
    alice.initialize()
    mallory = Client(endpoint, principal="mallory")
    mallory.session_id = alice.session_id
    for action in (mallory.request("ping"), mallory.get(), mallory.delete()):
        assert isinstance(action, Reply)
        assert action.status == 404
    assert len(endpoint.sessions) == 1
    anonymous = Client(endpoint)
    anonymous.session_id = alice.session_id
    reply = anonymous.request("ping")
    assert isinstance(reply, Reply)
    assert reply.status == 404


def test_close_session_from_the_server() -> None:
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    call = client.start()
    assert endpoint.close_session(client.session_id or "") == (call.stream,)
    assert endpoint.close_session("unknown") == ()


def test_set_level_filters_logs() -> None:
    """ "Logging": honour logging/setLevel; invalid level -> -32602."""
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    call = client.start()
    call.stream.open()
    assert call.stream.log("debug", "x") is None  # default level is info
    assert call.stream.log("info", "x") is not None
    reply = client.request("logging/setLevel", {"level": "error"})
    assert isinstance(reply, Reply)
    assert body_json(reply)["result"] == {}
    assert call.stream.log("warning", "x") is None  # takes effect mid-stream
    assert call.stream.log("critical", "x") is not None
    bad = client.request("logging/setLevel", {"level": "loud"})
    assert isinstance(bad, Reply)
    assert body_json(bad)["error"]["code"] == -32602


def _unfinished_handshake(endpoint: Endpoint) -> Client:
    """An ``initialize`` never followed by ``notifications/initialized``."""
    client = Client(endpoint)
    reply = client.request(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x"}},
    )
    assert isinstance(reply, Reply)
    assert reply.status == 200
    client.session_id = dict(reply.headers)[b"mcp-session-id"].decode()
    return client


def test_an_unfinished_handshake_expires_fast_however_busy_its_client_is() -> None:
    clock = FakeClock()
    endpoint = make_endpoint(clock=clock)
    assert endpoint.config.handshake_timeout == 10
    unfinished = _unfinished_handshake(endpoint)
    ready = Client(endpoint)
    ready.initialize()
    assert endpoint.next_deadline() == clock.now + 10
    clock.advance(9)
    unfinished.request("ping")  # activity does not postpone a handshake's deadline
    assert endpoint.expire_sessions() == []
    clock.advance(1)
    assert endpoint.expire_sessions() == [unfinished.session_id]
    assert endpoint.next_deadline() == clock.now - 10 + 1800  # the ready one's idle expiry
    reply = unfinished.request("ping")
    assert isinstance(reply, Reply)
    assert reply.status == 404


def test_a_flood_of_unfinished_handshakes_locks_new_clients_out_for_seconds() -> None:
    clock = FakeClock()
    endpoint = make_endpoint(EndpointConfig(max_sessions=1000), clock=clock)
    for _ in range(1000):
        _unfinished_handshake(endpoint)
        clock.advance(0.001)
    newcomer = Client(endpoint)
    reply = newcomer.initialize()
    assert reply.status == 503
    retry = int(dict(reply.headers)[b"retry-after"])
    assert retry <= 10  # was ~1,790 s: the idle timeout
    clock.advance(retry)
    assert newcomer.initialize().status == 200  # a slot really freed by then


def test_handshake_timeout_none_keeps_the_idle_timeout() -> None:
    clock = FakeClock()
    endpoint = make_endpoint(
        EndpointConfig(handshake_timeout=None, session_idle_timeout=100), clock=clock
    )
    unfinished = _unfinished_handshake(endpoint)
    clock.advance(99)
    assert endpoint.expire_sessions() == []
    clock.advance(1)
    assert endpoint.expire_sessions() == [unfinished.session_id]


def _initialize_from(
    endpoint: Endpoint,
    peer: str | None,
    forwarded: str | None = None,
    principal: str | None = None,
) -> Reply:
    client = Client(endpoint)
    extra = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}},
        }
    )
    reply = endpoint.receive_request("POST", client.headers(extra), body, principal, peer=peer)
    assert isinstance(reply, Reply)
    return reply


def test_sessions_are_capped_per_remote_address_with_retry_after_its_next_expiry() -> None:
    clock = FakeClock()
    config = EndpointConfig(max_sessions_per_client=2, handshake_timeout=10)
    endpoint = make_endpoint(config, clock=clock)
    assert _initialize_from(endpoint, "10.0.0.1").status == 200
    clock.advance(4)
    assert _initialize_from(endpoint, "10.0.0.1").status == 200
    refused = _initialize_from(endpoint, "10.0.0.1")
    assert refused.status == 429
    assert dict(refused.headers)[b"retry-after"] == b"6"  # its first session's handshake deadline
    assert body_json(refused)["error"]["code"] == -32000
    assert _initialize_from(endpoint, "10.0.0.2").status == 200  # another client is served
    clock.advance(6)
    assert _initialize_from(endpoint, "10.0.0.1").status == 200  # a slot really freed


def test_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    config = EndpointConfig(max_sessions_per_client=1, trusted_proxies=("10.0.0.9",))
    endpoint = make_endpoint(config)
    # Behind the trusted proxy, clients are told apart by the hop it appended.
    assert _initialize_from(endpoint, "10.0.0.9", "1.1.1.1").status == 200
    assert _initialize_from(endpoint, "10.0.0.9", "2.2.2.2").status == 200
    assert _initialize_from(endpoint, "10.0.0.9", "6.6.6.6, 1.1.1.1").status == 429  # spoofed left
    # From anyone else the header is ignored: the peer is the client.
    assert _initialize_from(endpoint, "3.3.3.3", "4.4.4.4").status == 200
    assert _initialize_from(endpoint, "3.3.3.3", "5.5.5.5").status == 429


def test_with_authentication_the_principal_is_the_client() -> None:
    endpoint = make_endpoint(EndpointConfig(max_sessions_per_client=1))
    assert _initialize_from(endpoint, "10.0.0.1", principal="alice").status == 200
    assert _initialize_from(endpoint, "10.0.0.1", principal="bob").status == 200  # same address
    assert _initialize_from(endpoint, "10.0.0.2", principal="alice").status == 429
    endpoint_without_cap = make_endpoint()
    for _ in range(5):
        assert _initialize_from(endpoint_without_cap, "10.0.0.1").status == 200
