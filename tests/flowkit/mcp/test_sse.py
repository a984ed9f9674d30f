"""SSE framing and event ids ("Resumability and Redelivery", 2025-11-25)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowkit.mcp import EventId, encode_comment
from flowkit.mcp._sse import encode_event, encode_json_event, event_template, parse_event_id


def test_encode_event_fields() -> None:
    assert encode_event(b"x") == b"data: x\n\n"
    assert encode_event(b"", event_id=b"1:0", retry_ms=500) == b"id: 1:0\nretry: 500\ndata: \n\n"
    assert encode_event(b"x", event=b"message") == b"event: message\ndata: x\n\n"


def test_json_event_is_one_data_line_even_with_newlines_in_strings() -> None:
    message = {"jsonrpc": "2.0", "method": "n", "params": {"text": "a\nb\r\nc"}}
    event = encode_json_event(message, b"3:4")
    assert event.startswith(b"id: 3:4\ndata: ")
    assert event.endswith(b"\n\n")
    assert event.count(b"\n") == 3
    assert orjson.loads(event.split(b"data: ", 1)[1]) == message
    assert encode_json_event({"a": 1}) == b'data: {"a":1}\n\n'


def test_comment_is_a_keepalive() -> None:
    assert encode_comment() == b":\n\n"
    assert encode_comment(b"ping\nx") == b": ping x\n\n"


@given(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E)), st.integers(0, 10**15)
)
def test_event_id_round_trip(stream_id: str, seq: int) -> None:
    event_id = EventId(stream_id or "s", seq)
    assert parse_event_id(event_id.encode()) == event_id
    assert parse_event_id(str(event_id)) == event_id


def test_parse_event_id_rejects_foreign_ids() -> None:
    values: list[str | bytes] = [
        "",
        "abc",
        "1:",
        ":1",
        "1:x",
        "1:-1",
        "a b:1",
        "1:\uff11",
        b"\xff:1",
        "1:" + "9" * 30,
    ]
    for value in values:
        assert parse_event_id(value) is None


@pytest.mark.parametrize("prefix", [None, b"1:", b"a%d:"])
def test_event_template_frames_as_encode_event(prefix: bytes | None) -> None:
    template = event_template(prefix)
    payload = b'{"x":"100%"}'
    if prefix is None:
        assert template % payload == encode_event(payload)
    else:
        assert template % (7, payload) == encode_event(payload, event_id=prefix + b"7")
