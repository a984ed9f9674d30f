"""One peer on a message channel (stdio): what the binding keeps per connection.

Over Streamable HTTP every request names its session in a header and a
stateless-era call is cancelled by closing its response. A newline-delimited
channel (2026-07-28 ``transports/stdio``) has neither: no header layer and one
shared stream for everything. The connection itself is the context, so it
holds what the headers and the per-request streams stood for:

* the handshake-era session its ``initialize`` opened (later messages belong
  to it; a second ``initialize`` is refused), and that session's stream of
  server notifications (``notifications/tools/list_changed``), which HTTP
  carries on the session's GET stream and stdio on the channel itself;
* the stateless-era requests in flight, so that ``notifications/cancelled``,
  the only cancellation stdio has, can find them, and so that an id is not
  reused while its request runs.
"""

from __future__ import annotations

import attrs

from ._jsonrpc import RequestId
from ._stream import OutgoingStream

__all__ = ["Connection"]

_MIN_WATERMARK = 64


@attrs.define(eq=False)
class Connection:
    """The state of one message channel; made by :meth:`Endpoint.open_connection`.

    Attributes:
        session_id: the session this connection's ``initialize`` opened.
        listen: that session's notification stream (its ``listen``): the
            adapter writes what :meth:`Endpoint.list_changed` hands out for it.
        calls: stateless-era streams started on this connection, by request
            id; finished ones are pruned lazily (amortised O(1) per call).
    """

    session_id: str | None = None
    listen: OutgoingStream | None = None
    calls: dict[RequestId, OutgoingStream] = attrs.Factory(dict)
    _watermark: int = _MIN_WATERMARK

    def running(self, request_id: RequestId) -> OutgoingStream | None:
        """The unfinished stateless-era stream answering ``request_id``, if any."""
        stream = self.calls.get(request_id)
        if stream is not None and stream.finished:
            del self.calls[request_id]
            return None
        return stream

    def started(self, stream: OutgoingStream) -> None:
        """Track a stateless-era stream until it finishes."""
        assert stream.request_id is not None
        calls = self.calls
        if len(calls) >= self._watermark:
            for request_id in [rid for rid, s in calls.items() if s.finished]:
                del calls[request_id]
            self._watermark = max(_MIN_WATERMARK, 2 * len(calls))
        calls[stream.request_id] = stream
