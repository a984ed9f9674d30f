"""An incremental Server-Sent Events decoder: bytes in, events out.

The reading half of ``_sse.py``, in the style of h11: the caller feeds
whatever bytes arrived with :meth:`SSEDecoder.receive_data` (``b""`` for the
end of the stream) and takes complete events with
:meth:`SSEDecoder.next_event` (or by iterating), which answers ``None`` when
it needs more bytes. It owns no socket and no buffer policy of the caller's,
so any transport (httpx, a raw socket, a test's byte string) can drive it,
and a chunk boundary anywhere, inside a line, a CRLF pair or a UTF-8
sequence, changes nothing.

It follows the WHATWG "event stream interpretation" rules: lines end with
CRLF, LF or CR; a leading byte-order mark is dropped; a line starting with
``:`` is a comment; ``field: value`` loses one space after the colon;
``data`` lines join with ``\\n``; an empty line dispatches the event, unless
it had no ``data`` line; ``id`` persists across events (not with a NUL in
it) and ``retry`` sets the reconnection delay (ASCII digits only); unknown
fields are ignored; invalid UTF-8 decodes to U+FFFD. An event cut off by the
end of the stream is discarded, as the spec says: it was never delivered, so
its id never became the last one and a resuming client is sent it again;
:attr:`SSEDecoder.mid_event` tells the caller that it happened.

Comments are events here too (:class:`SSEComment`): the spec's browser API
hides them, but a client or a test watching keepalives needs to see them.

The one error the peer can cause is an event larger than ``max_event_size``
still unfinished: a :class:`RemoteProtocolError`, raised by ``next_event``,
rather than a buffer that grows without bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs

from .._checks import check_count
from ._errors import LocalProtocolError, event_too_large

__all__ = ["SSEComment", "SSEDecoder", "ServerSentEvent"]

_LINE_END = re.compile(rb"\r\n?|\n")
_BOM = b"\xef\xbb\xbf"
# A longer ``retry`` is no delay anyone means (and int() refuses over 4300 digits).
_MAX_RETRY_DIGITS = 18


def _is_delay(value: str) -> bool:
    """A ``retry`` value the spec accepts: ASCII digits only (and not absurdly many)."""
    return value.isascii() and value.isdigit() and len(value) <= _MAX_RETRY_DIGITS


@attrs.frozen
class ServerSentEvent:
    """One dispatched event.

    Attributes:
        data: the ``data`` lines joined with ``\\n`` (``""`` for one empty
            ``data:`` line, as the MCP priming event has).
        event: the event type; ``"message"`` unless an ``event`` field set it.
        id: the ``id`` field this event carried, or ``None``; the id to resume
            from is :attr:`SSEDecoder.last_event_id`, which persists.
        retry: the reconnection delay in milliseconds a ``retry`` field of
            this event set, or ``None``.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


@attrs.frozen
class SSEComment:
    """One comment line (``:text``), such as a keepalive.

    Attributes:
        text: what followed the colon, less one leading space.
    """

    text: str = ""


@attrs.define
class _Pending:
    """The fields of the event being read, up to the empty line that dispatches it."""

    data: list[str] = attrs.Factory(list)
    data_size: int = 0
    event: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental ``text/event-stream`` decoder (see the module docstring).

    Args:
        max_event_size: bound, in bytes, on an unfinished event: its ``data``
            lines so far plus the line being read. Beyond it
            :meth:`next_event` raises :class:`RemoteProtocolError`.

    Attributes:
        last_event_id: the last ``id`` of a dispatched event (``""`` before
            any), what a reconnecting client sends as ``Last-Event-ID``.
        retry: the reconnection delay in milliseconds the server last asked
            for, or ``None``.
    """

    def __init__(self, *, max_event_size: int = 16 * 1024 * 1024) -> None:
        self.max_event_size = check_count(max_event_size, "max_event_size")
        self.last_event_id = ""
        self.retry: int | None = None
        self._buffer = bytearray()
        self._pos = 0  # where the unread part of _buffer starts
        self._start = True  # a BOM may still be due
        self._skip_lf = False  # the last line ended with a CR at the end of a chunk
        self._ended = False
        self._pending = _Pending()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes as they arrived; ``b""`` means the stream ended.

        Raises:
            LocalProtocolError: data after the end of the stream.
        """
        if self._ended:
            raise LocalProtocolError("SSEDecoder.receive_data() after the end of the stream")
        if data:
            self._buffer += data
        else:
            self._ended = True

    def next_event(self) -> ServerSentEvent | SSEComment | None:
        """The next complete event or comment; ``None`` until more bytes arrive.

        After the end of the stream, ``None`` means there will be no more.

        Raises:
            RemoteProtocolError: the event being read outgrew ``max_event_size``.
        """
        while (line := self._next_line()) is not None:
            event = self._process(line)
            if event is not None:
                return event
        if not self._start:  # else only a BOM's first bytes are held
            self._check_size(len(self._buffer))
        return None  # after the end, what is held is never dispatched

    @property
    def mid_event(self) -> bool:
        """Whether the bytes so far end inside an event (a line, or fields not yet dispatched).

        After the end of the stream, whether it was cut off mid-event: the
        part that :meth:`next_event` never returns.
        """
        return self._pos < len(self._buffer) or self._pending != _Pending()

    def __iter__(self) -> Iterator[ServerSentEvent | SSEComment]:
        """Every event complete so far (stops where :meth:`next_event` answers ``None``)."""
        while (event := self.next_event()) is not None:
            yield event

    def _next_line(self) -> bytes | None:
        """The next complete line without its end, or ``None`` (the rest kept for later)."""
        buffer, pos = self._buffer, self._pos
        if self._skip_lf and pos < len(buffer):
            self._skip_lf = False
            if buffer[pos] == 0x0A:
                pos += 1
        if self._start:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer) and not self._ended:
                return None  # too short to tell
            self._start = False
            if buffer.startswith(_BOM):
                pos = len(_BOM)
        found = _LINE_END.search(buffer, pos)
        if found is None:
            del buffer[:pos]  # once per chunk, not per line: reading stays linear
            self._pos = 0
            return None
        end = found.end()
        if end == len(buffer) and buffer[-1] == 0x0D:
            self._skip_lf = True  # its LF, if any, is in the next chunk
        self._pos = end
        return bytes(buffer[pos : found.start()])

    def _check_size(self, line_size: int) -> None:
        size = self._pending.data_size + line_size
        if size > self.max_event_size:
            raise event_too_large(size, self.max_event_size)

    def _process(self, raw: bytes) -> ServerSentEvent | SSEComment | None:
        pending = self._pending
        if not raw:
            return self._dispatch()
        self._check_size(len(raw))
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if not name and colon:
            return SSEComment(value)
        if name == "data":
            pending.data.append(value)
            pending.data_size += len(raw)
        elif name == "event":
            pending.event = value
        elif name == "id" and "\0" not in value:
            pending.id = value
        elif name == "retry" and _is_delay(value):
            pending.retry = self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        pending, self._pending = self._pending, _Pending()
        if pending.id is not None:
            self.last_event_id = pending.id
        if not pending.data:
            return None
        return ServerSentEvent(
            "\n".join(pending.data), pending.event or "message", pending.id, pending.retry
        )
