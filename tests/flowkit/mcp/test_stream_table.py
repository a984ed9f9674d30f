"""Every (state, input) pair of every stream table, and of the session table.

h2's style: for each pair, drive a real stream into the state with real
inputs, apply the input through the public method, and check the outcome the
table names: the next state (and bytes produced), ``IGNORED`` (nothing
produced, state kept: a cancel after completion, anything after a cancel),
``REFUSED`` (the peer's fault: RemoteProtocolError 409), or no entry (our
misuse: LocalProtocolError, state kept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flowkit.mcp import (
    VERSIONS,
    InMemoryEventStore,
    LocalProtocolError,
    OutgoingStream,
    RemoteProtocolError,
)
from flowkit.mcp._sessions import SESSION_TRANSITIONS, Session, SessionEvent, SessionState
from flowkit.mcp._stream import STREAM_TRANSITIONS, Outcome, StreamInput, StreamState

_S, _I = StreamState, StreamInput

# How to reach each state from CREATED, as public calls.
_PATHS: dict[StreamState, list[Callable[[OutgoingStream], Any]]] = {
    _S.CREATED: [],
    _S.ATTACHED: [OutgoingStream.open],
    _S.CLOSING: [OutgoingStream.open, OutgoingStream.end_response],
    _S.DETACHED: [OutgoingStream.open, OutgoingStream.detach],
    _S.DONE: [OutgoingStream.open, lambda s: s.error(-32603, "x")],
    _S.CANCELLED: [OutgoingStream.cancel],
}

# Each input as the public call that reports it.
_CALLS: dict[StreamInput, Callable[[OutgoingStream], Any]] = {
    _I.OPEN: lambda s: s.open()[2],
    _I.ATTACH: OutgoingStream.attach,
    _I.SEND: lambda s: s.notify("notifications/x"),
    _I.KEEPALIVE: OutgoingStream.keepalive,
    _I.CLOSE: OutgoingStream.end_response,
    _I.DETACH: OutgoingStream.detach,
    _I.FINAL: lambda s: s.error(-32603, "x"),
    _I.ABORT: OutgoingStream.abort,
    _I.CANCEL: OutgoingStream.cancel,
    _I.EXPIRE: lambda s: s.expire(-32000, "x"),
}
# What each input produces when the table lets it through (None: no value).
_PRODUCES = {_I.SEND, _I.KEEPALIVE, _I.FINAL, _I.ABORT, _I.CLOSE}


def _stream(kind: str, resumable: bool) -> OutgoingStream:
    if kind == "listen":
        return OutgoingStream(kind="listen", stream_id="1", session_id="s")
    return OutgoingStream(
        kind="call",
        stream_id="1",
        session_id="s",
        request_id=1,
        store=InMemoryEventStore(),
        disconnect_cancels=not resumable,  # the stateless era's call stream
    )


def _reach(kind: str, resumable: bool, state: StreamState) -> OutgoingStream | None:
    """A stream in ``state``, or None if this kind never gets there."""
    stream = _stream(kind, resumable)
    try:
        for step in _PATHS[state]:
            step(stream)
    except LocalProtocolError:
        return None
    return stream if stream.state is state else None


_PAIRS = [
    (kind, resumable, state, event)
    for (kind, resumable) in STREAM_TRANSITIONS
    for state in StreamState
    for event in StreamInput
]


@pytest.mark.parametrize(("kind", "resumable", "state", "event"), _PAIRS)
def test_every_pair_has_the_outcome_of_its_table(
    kind: str, resumable: bool, state: StreamState, event: StreamInput
) -> None:
    table = STREAM_TRANSITIONS[kind, resumable]  # type: ignore[index]
    stream = _reach(kind, resumable, state)
    if stream is None:
        # Unreachable here (a listen stream never ends by itself; only a
        # resumable stream closes early): no row leads into it or out of it.
        assert all(after is not state for after in table.values())
        assert all(before is not state for before, _ in table)
        return
    expected = table.get((state, event))
    act = _CALLS[event]
    if expected is None:
        with pytest.raises(LocalProtocolError):
            act(stream)
        assert stream.state is state
    elif expected is Outcome.REFUSED:
        with pytest.raises(RemoteProtocolError) as refused:
            act(stream)
        assert refused.value.http_status == 409
        assert stream.state is state
    elif expected is Outcome.IGNORED:
        assert not act(stream)
        assert stream.state is state
    else:
        produced = act(stream)
        assert stream.state is expected
        if event in _PRODUCES and expected is not StreamState.CANCELLED:
            assert produced


def test_the_tables_differ_only_where_the_kind_does() -> None:
    resumable, not_resumable = STREAM_TRANSITIONS["call", True], STREAM_TRANSITIONS["call", False]
    changed = {k for k in resumable if resumable[k] != not_resumable.get(k)}
    assert changed - {k for k in resumable if k[0] is _S.CLOSING} == {(_S.ATTACHED, _I.CLOSE)}
    listen = STREAM_TRANSITIONS["listen", False]
    extra = {pair for pair in set(resumable) - set(listen) if pair[0] not in (_S.CLOSING, _S.DONE)}
    assert {event for _, event in extra} == {_I.FINAL, _I.ABORT, _I.CLOSE, _I.EXPIRE}


def test_terminal_states_stay_terminal() -> None:
    for table in STREAM_TRANSITIONS.values():
        for (state, _), after in table.items():
            if state in (_S.DONE, _S.CANCELLED):
                assert after in (state, Outcome.IGNORED)


def test_progress_steps_the_same_table() -> None:
    """The hot path asks the table too: after a cancel it produces nothing."""
    stream = OutgoingStream(kind="call", stream_id="1", request_id=1, progress_token="t")
    stream.open()
    assert stream.progress(1)
    stream.cancel()
    assert stream.progress(2) == b""
    done = OutgoingStream(kind="call", stream_id="1", request_id=1, progress_token="t")
    done.open()
    done.error(-32603, "x")
    with pytest.raises(LocalProtocolError):
        done.progress(1)


@pytest.mark.parametrize(("state", "event"), [(s, e) for s in SessionState for e in SessionEvent])
def test_every_session_pair(state: SessionState, event: SessionEvent) -> None:
    session = Session("s", principal=None, policy=VERSIONS["2025-11-25"], log_level="info", now=0)
    paths = {
        SessionState.INITIALIZING: [],
        SessionState.READY: [SessionEvent.INITIALIZED],
        SessionState.CLOSED: [SessionEvent.CLOSE],
    }
    for step in paths[state]:
        session.handle(step)
    assert session.state is state
    expected = SESSION_TRANSITIONS.get((state, event))
    if expected is None:
        with pytest.raises(LocalProtocolError):
            session.handle(event)
        assert session.state is state
    else:
        session.handle(event)
        assert session.state is expected
