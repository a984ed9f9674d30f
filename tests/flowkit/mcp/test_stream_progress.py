"""The progress hot path and the event store's appender are exact shortcuts.

``OutgoingStream.progress`` formats most events from per-stream constants
(envelope and token pre-encoded, orjson only for the message) and files them
through ``InMemoryEventStore.appender``. These properties check both against
the generic paths they shortcut: the same bytes as ``encode_json_event`` of
the JSON-RPC message, the same ids, and the same store contents as a plain
reference model of the store's bounds.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.mcp import EventId, InMemoryEventStore, LocalProtocolError, OutgoingStream
from flowkit.mcp._sse import encode_json_event

tokens = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70),
)
numbers = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
)
messages = st.one_of(st.none(), st.text(max_size=40))


def _stream(token: Any, store: InMemoryEventStore | None) -> OutgoingStream:
    stream = OutgoingStream(
        kind="call",
        stream_id="7",
        session_id="session-1" if store is not None else None,
        request_id=1,
        progress_token=token,
        store=store,
    )
    stream.open()
    return stream


def _generic(token: Any, progress: Any, total: Any, message: Any, seq: int | None) -> bytes:
    params: dict[str, Any] = {"progressToken": token, "progress": progress}
    if total is not None:
        params["total"] = total
    if message is not None:
        params["message"] = message
    message_ = {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}
    return encode_json_event(message_, None if seq is None else b"7:%d" % seq)


@settings(max_examples=300)
@given(
    token=tokens,
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=2**66) | st.floats(0.001, 1e6),
            st.one_of(st.none(), numbers),
            messages,
        ),
        min_size=1,
        max_size=8,
    ),
    stored=st.booleans(),
)
def test_progress_bytes_equal_the_generic_encoder(
    token: Any, steps: list[tuple[Any, Any, Any]], stored: bool
) -> None:
    store = InMemoryEventStore() if stored else None
    stream = _stream(token, store)
    position: float = 0
    filed: list[bytes] = []
    for step, total, message in steps:
        if position + step <= position:  # a float step lost in rounding
            return
        position += step
        try:
            expected = _generic(token, position, total, message, len(filed) + 1 if stored else None)
        except TypeError:  # orjson: an integer out of its range
            with pytest.raises(TypeError):
                stream.progress(position, total, message)
            return
        assert stream.progress(position, total, message) == expected
        filed.append(expected)
    if store is not None:
        assert store.replay_after("session-1", EventId("7", 0)) == filed


def test_fast_path_keeps_the_checks() -> None:
    stream = _stream("t", InMemoryEventStore())
    assert stream.progress(1, 10, "a").endswith(b'"progress":1,"total":10,"message":"a"}}\n\n')
    with pytest.raises(LocalProtocolError, match="strictly increase"):
        stream.progress(1)
    with pytest.raises(LocalProtocolError, match="finite"):
        stream.progress(float("nan"))
    # total changes take effect (the cached encoding is per value and type)
    assert b'"total":10.0}' in stream.progress(2, 10.0)
    assert b'"total":11}' in stream.progress(3, 11)
    stream.result({"content": []})
    with pytest.raises(LocalProtocolError):
        stream.progress(4)


class _ReferenceStore:
    """The store's bounds, spelled out: a list in age order."""

    def __init__(self, per_stream: int, total: int) -> None:
        self.per_stream, self.total = per_stream, total
        self.events: list[tuple[str, str, int, bytes]] = []

    def append(self, session: str, stream: str, seq: int, data: bytes) -> None:
        self.events.append((session, stream, seq, data))
        mine = [e for e in self.events if e[:2] == (session, stream)]
        if len(mine) > self.per_stream:
            self.events.remove(mine[0])
        while len(self.events) > self.total:
            del self.events[0]

    def replay_after(self, session: str, stream: str, seq: int) -> list[bytes] | None:
        mine = [e for e in self.events if e[:2] == (session, stream)]
        if not mine:
            return None
        return [e[3] for e in mine if e[2] > seq]

    def forget(self, session: str) -> None:
        self.events = [e for e in self.events if e[0] != session]


@settings(max_examples=300)
@given(
    per_stream=st.integers(1, 5),
    total=st.integers(1, 8),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["append", "append", "append", "fast", "fast", "forget"]),
            st.sampled_from(["s", "t"]),
            st.sampled_from(["1", "2", "3"]),
        ),
        max_size=60,
    ),
)
def test_store_matches_its_reference_model(
    per_stream: int, total: int, ops: list[tuple[str, str, str]]
) -> None:
    store = InMemoryEventStore(max_events_per_stream=per_stream, max_events=total)
    model = _ReferenceStore(per_stream, total)
    seqs: dict[tuple[str, str], int] = {}
    appenders = {}
    for i, (op, session, stream) in enumerate(ops):
        key = (session, stream)
        if op == "forget":
            store.forget_session(session)
            model.forget(session)
            for k in [k for k in appenders if k[0] == session]:
                del appenders[k]
        else:
            seq = seqs[key] = seqs.get(key, -1) + 1
            data = b"%s%s-%d-%d" % (session.encode(), stream.encode(), seq, i)
            if op == "fast":
                if key not in appenders:
                    appenders[key] = store.appender(session, stream)
                appenders[key](seq, data)
            else:
                store.append(session, EventId(stream, seq), data)
            model.append(session, stream, seq, data)
        assert len(store) == len(model.events)
        for s in ("s", "t"):
            for t in ("1", "2", "3"):
                for after in (-1, 0, 2):
                    assert store.replay_after(s, EventId(t, after)) == model.replay_after(
                        s, t, after
                    )
    assert len(store._order) <= 2 * total + len(store)  # stale entries stay bounded
