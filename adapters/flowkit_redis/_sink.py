"""A pipeline stage that appends to a Redis stream, one round trip per chunk.

:func:`stream_sink` takes whatever is ready upstream (up to ``chunk``
items), writes it in one round trip (one script call doing ``XADD ...
MAXLEN ~`` for each), and only then takes more. While Redis is slow the sink is busy, its hop fills
and the pipeline upstream waits: that is the backpressure. Items it has
taken and not yet written count as ``buffered``, which is what lets an
acked pipeline (:class:`flowkit.AckTracker`) acknowledge a source entry only
after its output is in Redis.

**Idempotent mode** (``idempotent=True``). Each item has a key (by default
its ``id``: the source entry it came from). One Lua script call per chunk,
atomic in Redis, appends an item only if its key's dedup record was not
there, and writes the record in the same step (``SET NX EX``). A source
entry delivered again after a crash (written, not yet acknowledged)
therefore adds nothing the second time. With the group source that is
*effectively once*, and the promise rests on:

* keys that name an output deterministically (the same input gives the
  same key; two different outputs never share one);
* the dedup record outliving any redelivery (``dedup_ttl``, one day by
  default, well above ``claim_idle``);
* Redis keeping what it acknowledged (AOF with ``appendfsync always`` for
  a crash of Redis itself; a failover to a replica that missed the last
  writes can lose them).

The acknowledgement need not be in the same script: a redelivered entry is
harmless once its output's record exists, and an entry that made no output
(filtered, or folded into an output keyed otherwise) is acknowledged by the
source at a settle point in any case. Dedup records are keys
``{<stream>}:dedup:<key>``, hash-tagged like the stream so a Cluster keeps
them in its slot.

When Redis is unreachable the sink waits for it (the client's backoff with
jitter) and writes the chunk again: in at-least-once mode a write that was
applied but whose reply was lost is then written twice; in idempotent mode
it is not.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

import flowkit
from flowkit._operator import receive_some

from ._client import RedisClient, StoreUnavailable

__all__ = ["SinkStatistics", "StreamSink", "live_sinks", "stream_sink"]

#: Appends a chunk; returns how many entries it appended. KEYS[1] the stream;
#: ARGV: maxlen, dedup ttl (s), dedup prefix, then per entry its dedup key
#: ("" in at-least-once mode: append unconditionally), its field count and
#: its fields. An entry with a key is appended only if its dedup record was
#: not there, and the record is written in the same step.
_APPEND = """
local added = 0
local i = 4
while i <= #ARGV do
  local n = tonumber(ARGV[i + 1])
  if ARGV[i] == '' or redis.call('SET', ARGV[3] .. ARGV[i], '1', 'NX', 'EX', ARGV[2]) then
    local command = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*'}
    for j = i + 2, i + 1 + 2 * n do
      command[#command + 1] = ARGV[j]
    end
    redis.call(unpack(command))
    added = added + 1
  end
  i = i + 2 + 2 * n
end
return added
"""

Fields = Mapping[Any, Any]


@attrs.frozen
class SinkStatistics:
    """What a sink wrote (``sink.sink_statistics()``; ``statistics()`` is the operator's).

    Attributes:
        written: entries appended to the stream.
        duplicates: items skipped because their dedup record existed.
        round_trips: writes sent to Redis (one per chunk, plus retries).
        retries: chunks written again after Redis was unreachable.
    """

    written: int = 0
    duplicates: int = 0
    round_trips: int = 0
    retries: int = 0


def _fields_of(item: Any) -> Fields:
    fields = getattr(item, "fields", item)
    if not isinstance(fields, Mapping):
        raise TypeError(
            f"stream_sink writes mappings (or items with .fields); got {type(item).__name__}: "
            "pass fields= to turn items into field-value pairs"
        )
    return fields


def _id_of(item: Any) -> str:
    key = getattr(item, "id", None)
    if key is None:
        raise TypeError(
            f"an idempotent stream_sink needs a key per item; {type(item).__name__} has no .id: "
            "pass key="
        )
    return str(key)


class StreamSink(flowkit.Operator[Any, None]):
    """The stage :func:`stream_sink` makes; it emits nothing downstream."""

    _kind = "stream_sink"

    def __init__(
        self,
        client: RedisClient,
        stream: str,
        *,
        maxlen: int,
        chunk: int,
        idempotent: bool,
        fields: Callable[[Any], Fields],
        key: Callable[[Any], str],
        dedup_ttl: float,
        name: str | None,
    ) -> None:
        super().__init__(name=name)
        if maxlen < 1 or chunk < 1 or not dedup_ttl >= 1:
            raise ValueError("maxlen and chunk must be >= 1, dedup_ttl >= 1 s")
        self.client = client
        self.stream = stream
        self.idempotent = idempotent
        self._maxlen = maxlen
        self._chunk = chunk
        #: The pipeline sizes the hop in front to one chunk (see ``_hop_capacity``).
        self._input_hop = chunk
        self._fields = fields
        self._key = key
        self._dedup_args = [str(maxlen), str(round(dedup_ttl)), f"{{{stream}}}:dedup:"]
        self._script = client.redis.register_script(_APPEND)
        self._stats = {"written": 0, "duplicates": 0, "round_trips": 0, "retries": 0}
        _LIVE.add(self)  # for /metrics (weakly: see live_sinks)

    def sink_statistics(self) -> SinkStatistics:
        return SinkStatistics(**self._stats)

    async def _run(self, receive: trio.abc.ReceiveChannel[Any], send: Any) -> None:
        counters = self._counters
        while True:
            try:
                chunk = await receive_some(receive, self._chunk)
            except trio.EndOfChannel:
                return
            counters.items_in += len(chunk)
            counters.set_buffered(len(chunk))  # held until Redis has them
            write = self._write(chunk)
            while True:
                self._stats["round_trips"] += 1
                try:
                    added = await self.client.run(write)
                    break
                except StoreUnavailable:
                    self._stats["retries"] += 1
                    await self.client.wait_up()
            self._stats["written"] += added
            self._stats["duplicates"] += len(chunk) - added
            counters.items_out += len(chunk)
            counters.set_buffered(0)

    def _write(self, chunk: list[Any]) -> Callable[[Any], Any]:
        """One script call: every entry's ``XADD`` (and dedup record) in one round trip.

        A script rather than a pipeline of ``XADD``: one command to build and
        parse instead of one per entry, and the idempotent mode is the same
        code with keys.
        """
        args: list[Any] = list(self._dedup_args)
        key = self._key if self.idempotent else None
        for item in chunk:
            fields = self._fields(item)
            args += (key(item) if key is not None else "", str(len(fields)))
            for field, value in fields.items():
                args += (field, value)
        script = self._script

        async def write(redis: Any) -> int:
            return int(await script(keys=[self.stream], args=args))

        return write


def stream_sink(
    client: RedisClient,
    stream: str,
    *,
    maxlen: int = 1_000_000,
    chunk: int = 256,
    idempotent: bool = False,
    fields: Callable[[Any], Fields] = _fields_of,
    key: Callable[[Any], str] = _id_of,
    dedup_ttl: float = 86_400.0,
    name: str | None = None,
) -> StreamSink:
    """A stage appending every item to ``stream`` (``XADD``, ``MAXLEN ~ maxlen``).

    Args:
        client: the connection.
        stream: the stream's key.
        maxlen: approximate length the stream is trimmed to on each append
            (an unbounded stream is the classic leak).
        chunk: the most items one round trip writes.
        idempotent: write each key at most once (see the module docs).
        fields: the field-value pairs of an item (default: the item itself
            if a mapping, else its ``fields``).
        key: an item's dedup key in idempotent mode (default: its ``id``).
        dedup_ttl: seconds a dedup record lives.
        name: the stage's name in statistics.
    """
    return StreamSink(
        client,
        stream,
        maxlen=maxlen,
        chunk=chunk,
        idempotent=idempotent,
        fields=fields,
        key=key,
        dedup_ttl=dedup_ttl,
        name=name,
    )


_LIVE: weakref.WeakSet[StreamSink] = weakref.WeakSet()


def live_sinks() -> list[StreamSink]:
    """The stream sinks of this process not yet garbage-collected, in no order (see
    :func:`~flowkit_redis.live_sources`)."""
    return list(_LIVE)
