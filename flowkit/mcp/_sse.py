"""Server-Sent Events framing and event ids.

This is the hot path of every streaming tool call, so the encoders build each
event with a single ``bytes.join`` over pre-encoded constants: one allocation
for the frame on top of the one orjson makes for the JSON. orjson never emits
a raw newline (newlines inside strings are escaped), so a JSON payload is
always exactly one ``data:`` line and needs no splitting.

Event ids have the form ``<stream-id>:<seq>``. The stream part lets a
``Last-Event-ID`` be routed back to the stream it came from (the spec's
"Resumability and Redelivery": ids SHOULD encode the originating stream and
replay MUST NOT cross streams); ``seq`` orders events inside that stream.
Stream ids are unique inside a session, so event ids are unique per session.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

__all__ = [
    "EventId",
    "encode_comment",
    "encode_event",
    "encode_json_event",
    "event_template",
    "parse_event_id",
]

_ID = b"id: "
_DATA = b"data: "
_EVENT = b"event: "
_RETRY = b"retry: "
_NL = b"\n"
_END = b"\n\n"


@attrs.frozen
class EventId:
    """The id of one SSE event: which stream it belongs to and its position.

    Attributes:
        stream_id: the stream's id, unique within its session; visible ASCII
            without ``:``.
        seq: position in the stream, starting at 0 for the priming event.
    """

    stream_id: str
    seq: int

    def encode(self) -> bytes:
        """The id as it appears on the wire (``b"<stream-id>:<seq>"``)."""
        return str(self).encode("ascii")

    def __str__(self) -> str:
        return f"{self.stream_id}:{self.seq}"


def parse_event_id(value: str | bytes) -> EventId | None:
    """Parse a ``Last-Event-ID`` header value; ``None`` if it is not one of ours.

    A malformed id is not an error in itself: it simply names no stream we
    know, and the caller decides what that means (we answer 404).
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    stream_id, sep, seq = value.strip().rpartition(":")
    if not sep or not stream_id or not seq.isdigit() or not seq.isascii() or len(seq) > 18:
        return None
    if not all("!" <= c <= "~" for c in stream_id):
        return None
    return EventId(stream_id, int(seq))


def encode_event(
    data: bytes | None = None,
    *,
    event_id: bytes | None = None,
    event: bytes | None = None,
    retry_ms: int | None = None,
) -> bytes:
    """Encode one SSE event from pre-encoded parts: the one writer of SSE framing.

    Args:
        data: the payload, which must not contain ``\\n`` or ``\\r`` (one
            ``data:`` line). ``None`` writes no data line; ``b""`` writes an
            empty ``data:`` line, as the spec's priming event needs.
        event_id: the ``id:`` field (see :class:`EventId`).
        event: the ``event:`` field (event type); MCP does not use it.
        retry_ms: the ``retry:`` field, the client's reconnection delay.
    """
    if data is not None and event is None and retry_ms is None:
        # What every message a stream emits looks like: one join.
        if event_id is None:
            return b"".join((_DATA, data, _END))
        return b"".join((_ID, event_id, _NL, _DATA, data, _END))
    parts: list[bytes] = []
    if event_id is not None:
        parts += (_ID, event_id, _NL)
    if event is not None:
        parts += (_EVENT, event, _NL)
    if retry_ms is not None:
        parts += (_RETRY, str(retry_ms).encode("ascii"), _NL)
    if data is not None:
        parts += (_DATA, data, _NL)
    parts.append(_NL)
    return b"".join(parts)


def event_template(event_id_prefix: bytes | None = None) -> bytes:
    """The framing of one stream's data events as a ``%``-format, for the hot path.

    ``template % (seq, data)`` is ``encode_event(data, event_id=prefix + seq)``
    (without a prefix, ``template % data`` has no id), built by one format
    instead of a join per event.
    """
    if event_id_prefix is None:
        return _DATA + b"%s" + _END
    return _ID + event_id_prefix.replace(b"%", b"%%") + b"%d" + _NL + _DATA + b"%s" + _END


def encode_json_event(message: Any, event_id: bytes | None = None) -> bytes:
    """Encode a JSON-RPC message (a ``dict``) straight to one SSE event.

    orjson never emits a raw newline, so the JSON is always one ``data:`` line.
    """
    return encode_event(orjson.dumps(message), event_id=event_id)


def encode_comment(text: bytes = b"") -> bytes:
    """Encode an SSE comment line (``: text``), used as a keepalive.

    Clients ignore comments, but proxies and idle timers see traffic, which is
    what keeps a quiet tool-call stream alive behind a load balancer.
    """
    if text:
        return b"".join((b": ", text.replace(b"\n", b" ").replace(b"\r", b" "), _END))
    return b":\n\n"
