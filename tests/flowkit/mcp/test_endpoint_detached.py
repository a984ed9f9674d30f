"""Calls whose client is gone (handshake era): grace period, session expiry, caps.

In the 2025 era a disconnect is not a cancel, so without these a client that
starts ``ticker(count=10**12)`` and hangs up leaves a call running forever and
a session that never expires (issue 20, item 2). Driven on a fake clock.
"""

from __future__ import annotations

import orjson

from flowkit.mcp import EndpointConfig, Reply, Resume, StartCall
from flowkit.mcp._stream import StreamState

from ._client import Client, FakeClock, body_json, make_endpoint, sse_data


def _detached_call(config: EndpointConfig) -> tuple[Client, StartCall, FakeClock, bytes]:
    clock = FakeClock()
    endpoint = make_endpoint(config, clock=clock)
    client = Client(endpoint)
    client.initialize()
    call = client.start(progress_token="p")
    _, _, priming = call.stream.open()
    assert call.stream.progress(1)
    endpoint.stream_finished(call.stream, disconnected=True)  # the client hung up
    return client, call, clock, priming


def _event_id(event: bytes) -> bytes:
    return next(line for line in event.split(b"\n") if line.startswith(b"id: "))[4:]


def test_a_detached_call_is_cancelled_after_the_grace_period_and_a_resume_reads_why() -> None:
    config = EndpointConfig(detached_call_grace=60, session_idle_timeout=3600)
    client, call, clock, priming = _detached_call(config)
    endpoint = client.endpoint
    assert endpoint.config.detached_call_grace == 60
    assert endpoint.next_deadline() == clock.now + 60  # the grace ends before the idle time
    clock.advance(59)
    assert endpoint.expire() == ()
    assert call.stream.progress(2)  # still running, filed for a resume
    clock.advance(1)
    assert endpoint.expire() == (call.stream,)  # the adapter stops its work
    assert call.stream.state is StreamState.CANCELLED
    assert call.stream.progress(3) == b""  # nothing more goes out
    assert endpoint.expire() == ()
    # The session lives on (idle time restarts when the call ends); a client
    # resuming the call reads the progress it missed, then the final error.
    resume = client.get(last_event_id=_event_id(priming))
    assert isinstance(resume, Resume)
    assert resume.live is None
    messages = [sse_data(event) for event in resume.replay]
    assert [m["params"]["progress"] for m in messages[:-1]] == [1, 2]
    assert messages[-1]["id"] == call.request_id
    assert messages[-1]["error"]["code"] == -32000
    assert "no client attached for 60 s" in messages[-1]["error"]["message"]


def test_resuming_in_time_restarts_the_grace_period() -> None:
    client, call, clock, priming = _detached_call(EndpointConfig(detached_call_grace=60))
    endpoint = client.endpoint
    clock.advance(50)
    resume = client.get(last_event_id=_event_id(priming))
    assert isinstance(resume, Resume)
    assert resume.live is call.stream
    clock.advance(1000)
    assert endpoint.expire() == ()  # attached: no grace period runs
    endpoint.stream_finished(call.stream, disconnected=True)
    clock.advance(59)
    assert endpoint.expire() == ()
    clock.advance(1)
    assert endpoint.expire() == (call.stream,)


def test_no_grace_period_when_disabled_but_the_idle_session_still_expires() -> None:
    config = EndpointConfig(detached_call_grace=None, session_idle_timeout=100)
    client, call, clock, _ = _detached_call(config)
    endpoint = client.endpoint
    clock.advance(99)
    assert endpoint.expire() == ()
    clock.advance(1)
    # Idle with no client attached: the session expires, running call and all.
    assert endpoint.expire() == (call.stream,)
    assert call.stream.cancelled
    assert len(endpoint.sessions) == 0
    reply = client.request("ping")
    assert isinstance(reply, Reply)
    assert reply.status == 404


def test_an_attached_call_keeps_its_session_alive() -> None:
    clock = FakeClock()
    endpoint = make_endpoint(EndpointConfig(session_idle_timeout=100), clock=clock)
    client = Client(endpoint)
    client.initialize()
    call = client.start()
    call.stream.open()
    clock.advance(10_000)
    assert endpoint.expire() == ()
    assert call.stream.state is StreamState.ATTACHED


def _refused_429(action: object, limit: str) -> None:
    assert isinstance(action, Reply)
    assert action.status == 429
    assert dict(action.headers)[b"retry-after"] == b"5"
    error = body_json(action)["error"]
    assert error["code"] == -32000
    assert limit in error["message"]


def test_calls_in_flight_are_capped_per_session() -> None:
    endpoint = make_endpoint(EndpointConfig(max_calls_per_session=2))
    client = Client(endpoint)
    client.initialize()
    first, _ = client.start(), client.start()
    _refused_429(client.call("count", {"n": 1}), "2 per session")
    other = Client(endpoint)  # another session has its own allowance
    other.initialize()
    assert isinstance(other.start(), StartCall)
    first.stream.open()
    first.stream.result({"content": []})  # a slot frees when a call ends
    assert isinstance(client.start(), StartCall)


def test_calls_in_flight_are_capped_per_server_in_both_eras() -> None:
    endpoint = make_endpoint(EndpointConfig(max_calls=2))
    clients = [Client(endpoint) for _ in range(2)]
    for client in clients:
        client.initialize()
    calls = [client.start() for client in clients]
    third = Client(endpoint)
    third.initialize()
    _refused_429(third.call("count", {"n": 1}), "2 per server")
    stateless = endpoint.receive_request(
        "POST",
        [
            (b"host", b"localhost:8000"),
            (b"accept", b"application/json, text/event-stream"),
            (b"content-type", b"application/json"),
            (b"mcp-protocol-version", b"2026-07-28"),
            (b"mcp-method", b"tools/call"),
            (b"mcp-name", b"count"),
        ],
        orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {
                    "name": "count",
                    "arguments": {"n": 1},
                    "_meta": {
                        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                        "io.modelcontextprotocol/clientCapabilities": {},
                    },
                },
            }
        ),
    )
    assert isinstance(stateless, Reply)
    assert stateless.status == 429
    calls[0].stream.cancel()  # a cancelled call frees its slot too
    assert isinstance(third.start(), StartCall)
