"""The incremental SSE decoder, against the WHATWG event-stream rules and our own writer."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.mcp import (
    EventId,
    LocalProtocolError,
    RemoteProtocolError,
    ServerSentEvent,
    SSEComment,
    SSEDecoder,
    encode_comment,
)
from flowkit.mcp._sse import encode_event, encode_json_event

from ..._budget import examples

Decoded = ServerSentEvent | SSEComment


def decode(*chunks: bytes, decoder: SSEDecoder | None = None) -> list[Decoded]:
    """Everything ``chunks`` decode to, fed one by one, then the end of the stream."""
    decoder = decoder or SSEDecoder()
    events: list[Decoded] = []
    for chunk in (*(c for c in chunks if c), b""):  # b"" is the end: only once, last
        decoder.receive_data(chunk)
        events += decoder
    return events


# -- the spec's own examples (WHATWG HTML, "9.2.6 Interpreting an event stream") ---------------


def test_data_lines_join_with_newlines() -> None:
    assert decode(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [ServerSentEvent("YHOO\n+2\n10")]


def test_comments_ids_and_the_one_space_after_the_colon() -> None:
    stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n"
    decoder = SSEDecoder()
    assert decode(stream, decoder=decoder) == [
        SSEComment("test stream"),
        ServerSentEvent("first event", id="1"),
        ServerSentEvent("second event", id=""),  # a bare ``id`` resets the last event id
        ServerSentEvent(" third event"),
    ]
    assert decoder.last_event_id == ""


def test_empty_data_fires_and_an_unterminated_block_is_discarded() -> None:
    assert decode(b"data\n\ndata\ndata\n\ndata:") == [ServerSentEvent(""), ServerSentEvent("\n")]


def test_data_colon_and_data_colon_space_are_the_same_field() -> None:
    assert decode(b"data:test\n\ndata: test\n\n") == [ServerSentEvent("test")] * 2


# -- line endings, chunking, the byte-order mark -------------------------------------------


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(end: bytes) -> None:
    stream = end.join([b"id: 7", b"data: a", b"data: b", b"", b": ka", b"", b""])
    assert decode(stream) == [ServerSentEvent("a\nb", id="7"), SSEComment("ka")]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    """A CR ending a chunk may be half a CRLF: the LF that follows is not an empty line."""
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [ServerSentEvent("a\nb")]


def test_lone_crs_at_chunk_ends_are_line_ends() -> None:
    assert decode(b"data: a\r", b"\r", b"data: b\r\r") == [
        ServerSentEvent("a"),
        ServerSentEvent("b"),
    ]


def test_every_split_of_a_stream_decodes_alike() -> None:
    stream = b"\xef\xbb\xbfid: 1:0\r\nretry: 1000\r\ndata: \r\n\r\n:\n\ndata: \xc3\xa9t\xc3\xa9\r\r"
    whole = decode(stream)
    assert whole == [
        ServerSentEvent("", id="1:0", retry=1000),
        SSEComment(""),
        ServerSentEvent("été"),
    ]
    for cut in range(len(stream) + 1):
        assert decode(stream[:cut], stream[cut:]) == whole, cut
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == whole


def test_a_bom_is_dropped_at_the_start_only() -> None:
    bom = "\ufeff".encode()
    assert decode(bom + b"data: x\n\n") == [ServerSentEvent("x")]
    assert decode(bom[:1], bom[1:], b"data: x\n\n") == [ServerSentEvent("x")]
    # a second one is part of the next field's name: an unknown field, ignored
    assert decode(bom + b"data: x\n\n" + bom + b"data: y\n\n") == [ServerSentEvent("x")]


def test_a_stream_ending_inside_a_bom_prefix_yields_nothing() -> None:
    assert decode(b"\xef\xbb") == []


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert decode(b"data: \xff\xc3\n\n") == [ServerSentEvent("\ufffd\ufffd")]


# -- fields -----------------------------------------------------------------------------------


def test_event_type_defaults_to_message_and_resets_after_dispatch() -> None:
    assert decode(b"event: tick\ndata: 1\n\ndata: 2\n\n") == [
        ServerSentEvent("1", event="tick"),
        ServerSentEvent("2"),
    ]


def test_id_persists_until_changed_and_an_id_with_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    events = decode(b"id: a\ndata: 1\n\ndata: 2\n\nid: b\x00\ndata: 3\n\n", decoder=decoder)
    assert events == [ServerSentEvent("1", id="a"), ServerSentEvent("2"), ServerSentEvent("3")]
    assert decoder.last_event_id == "a"


def test_a_block_without_data_fires_nothing_but_sets_the_last_id_and_retry() -> None:
    decoder = SSEDecoder()
    assert decode(b"id: 5\nretry: 250\nevent: x\n\ndata: y\n\n", decoder=decoder) == [
        ServerSentEvent("y")  # type ``message``: the event field went with the empty block
    ]
    assert (decoder.last_event_id, decoder.retry) == ("5", 250)


@pytest.mark.parametrize("value", [b"", b"1.5", b"-1", b"\xd9\xa3", b"1" * 19, b"  10"])
def test_retry_takes_ascii_digits_only(value: bytes) -> None:
    decoder = SSEDecoder()
    assert decode(b"retry: 9\n\nretry:" + value + b"\ndata: x\n\n", decoder=decoder) == [
        ServerSentEvent("x")
    ]
    assert decoder.retry == 9


def test_unknown_fields_and_fields_without_a_colon_are_ignored() -> None:
    assert decode(b"foo: bar\nDATA: no\nidx: 3\nretry\ndata: kept\n\n") == [ServerSentEvent("kept")]


def test_an_event_cut_off_by_the_end_is_discarded_with_its_id() -> None:
    decoder = SSEDecoder()
    assert decode(b"id: 1\ndata: a\n\nid: 2\ndata: b\n", decoder=decoder) == [
        ServerSentEvent("a", id="1")
    ]
    assert decoder.last_event_id == "1"  # a resuming client asks for event 2 again
    assert decoder.next_event() is None
    assert decoder.mid_event  # and the client can tell the stream was cut


@pytest.mark.parametrize(
    ("received", "mid_event"),
    [
        (b"", False),
        (b"data: a\n\n", False),
        (b": keepalive\n", False),
        (b"\xef\xbb", True),
        (b"data: a", True),
        (b"data: a\n", True),
        (b"id: 3\n", True),
        (b"data: a\n\nretry: 5\r", True),
        (b"data: a\r\n\r", False),
    ],
)
def test_mid_event_tells_whether_the_bytes_end_inside_an_event(
    received: bytes, mid_event: bool
) -> None:
    decoder = SSEDecoder()
    if received:
        decoder.receive_data(received)
    list(decoder)
    assert decoder.mid_event is mid_event
    decoder.receive_data(b"")
    list(decoder)
    assert decoder.mid_event is mid_event


# -- what the caller and the peer can get wrong ------------------------------------------------


def test_next_event_asks_for_more_until_a_blank_line() -> None:
    decoder = SSEDecoder()
    decoder.receive_data(b"data: part")
    assert decoder.next_event() is None
    decoder.receive_data(b"ial\n")
    assert decoder.next_event() is None
    decoder.receive_data(b"\n")
    assert decoder.next_event() == ServerSentEvent("partial")
    assert decoder.next_event() is None


def test_data_after_the_end_is_our_misuse() -> None:
    decoder = SSEDecoder()
    decoder.receive_data(b"")
    with pytest.raises(LocalProtocolError, match="after the end of the stream"):
        decoder.receive_data(b"data: x\n\n")


def test_an_event_over_max_event_size_is_the_peers_error() -> None:
    decoder = SSEDecoder(max_event_size=10)
    decoder.receive_data(b"data: 1234\n\ndata: 12345678901")
    assert decoder.next_event() == ServerSentEvent("1234")
    with pytest.raises(RemoteProtocolError, match=r"max_event_size is 10"):
        decoder.next_event()


def test_max_event_size_bounds_data_lines_together() -> None:
    decoder = SSEDecoder(max_event_size=20)
    decoder.receive_data(b"data: 12345678\ndata: 12345678\n")  # 28 bytes of one event
    with pytest.raises(RemoteProtocolError, match="without its end"):
        decoder.next_event()


def test_comments_do_not_count_towards_the_bound() -> None:
    """Keepalives are not buffered, so a quiet stream of them never trips the bound."""
    assert decode(
        b": keepalive\n" * 100 + b"data: x\n\n", decoder=SSEDecoder(max_event_size=16)
    ) == [
        *[SSEComment("keepalive")] * 100,
        ServerSentEvent("x"),
    ]


# -- our writer, read back ------------------------------------------------------------------


def test_what_flowkit_writes_decodes_to_what_it_meant() -> None:
    message = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
    stream = (
        encode_event(b"", event_id=EventId("1", 0).encode(), retry_ms=1000)
        + encode_json_event(message, EventId("1", 1).encode())
        + encode_comment()
        + encode_comment(b"still\nhere")
        + encode_event(b"x", event=b"custom")
    )
    events = decode(stream)
    assert events == [
        ServerSentEvent("", id="1:0", retry=1000),
        ServerSentEvent(orjson.dumps(message).decode(), id="1:1"),
        SSEComment(""),
        SSEComment("still here"),
        ServerSentEvent("x", event="custom"),
    ]


# -- fuzz -------------------------------------------------------------------------------------

_line_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"))
_events = st.lists(
    st.builds(
        ServerSentEvent,
        data=st.lists(_line_text, min_size=1, max_size=3).map("\n".join),
        event=st.one_of(st.just("message"), _line_text.filter(bool)),
        id=st.one_of(st.none(), _line_text.filter(lambda s: "\0" not in s)),
        retry=st.one_of(st.none(), st.integers(0, 10**12)),
    ),
    max_size=6,
)


def _lines(event: ServerSentEvent, comment: str | None) -> list[str]:
    """One way (of many the spec allows) to write ``event`` as lines."""
    lines = [] if comment is None else [f":{comment}"]
    if event.id is not None:
        lines.append(f"id: {event.id}")
    if event.event != "message":
        lines.append(f"event: {event.event}")
    if event.retry is not None:
        lines.append(f"retry:{event.retry}")
    lines += [f"data: {line}" for line in event.data.split("\n")]
    return [*lines, ""]


@settings(max_examples=examples(300), deadline=None)
@given(events=_events, bom=st.booleans(), data=st.data())
def test_any_events_written_any_way_and_split_anywhere_decode_to_themselves(
    events: list[ServerSentEvent], bom: bool, data: st.DataObject
) -> None:
    expected: list[Decoded] = []
    lines: list[str] = []
    for event in events:
        comment = data.draw(st.one_of(st.none(), _line_text))
        if comment is not None:
            expected.append(SSEComment(comment.removeprefix(" ")))
        expected.append(event)
        lines += _lines(event, comment)
    ends = data.draw(
        st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines))
    )
    for i in range(1, len(lines)):  # CR then LF is one CRLF: an empty line after a CR needs its own
        if ends[i - 1] == "\r" and not lines[i] and ends[i] == "\n":
            ends[i] = "\r\n"
    stream = ("\ufeff" if bom else "").encode() + "".join(
        line + end for line, end in zip(lines, ends, strict=True)
    ).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    decoder = SSEDecoder()
    assert decode(*chunks, decoder=decoder) == expected
    ids = [e.id for e in events if e.id is not None]
    assert decoder.last_event_id == (ids[-1] if ids else "")


def _outcome(chunks: list[bytes], max_event_size: int) -> tuple[list[Decoded], str | None]:
    """The events decoded, and the error that stopped them (only RemoteProtocolError may)."""
    decoder = SSEDecoder(max_event_size=max_event_size)
    events: list[Decoded] = []
    try:
        for chunk in (*(c for c in chunks if c), b""):
            decoder.receive_data(chunk)
            events += decoder
    except RemoteProtocolError:
        return events, "RemoteProtocolError"  # anything else fails the test
    return events, None


# Bytes that mean something to the decoder, in any order: more telling than uniform noise.
_tokens = [
    b"data",
    b"id",
    b"retry",
    b"event",
    b":",
    b" ",
    b"\r",
    b"\n",
    b"\xef\xbb\xbf",
    b"\0",
    b"7",
]
_noise = st.lists(st.sampled_from([*_tokens, b"\xff"]), max_size=60).map(b"".join)


@settings(max_examples=examples(300), deadline=None)
@given(
    raw=st.one_of(st.binary(max_size=200), _noise),
    max_event_size=st.sampled_from([1, 8, 64, 1 << 20]),
    data=st.data(),
)
def test_arbitrary_bytes_decode_alike_however_split_or_fail_cleanly(
    raw: bytes, max_event_size: int, data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert _outcome(chunks, max_event_size) == _outcome([raw], max_event_size)
