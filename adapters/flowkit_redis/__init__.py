"""flowkit's shared state in Redis, through coredis on trio (issue 10).

Several flowkit instances behind a balancer share sessions and resumable
streams through one Redis. :class:`RedisSharedStore` is what the adapter
drives for a shared ``flowkit.mcp.Endpoint`` (the core's ``SharedStore``
boundary): :class:`RedisEventStore` keeps every MCP stream's
events (one Redis stream each), :class:`RedisSessionStore` the sessions (a
hash each, with a cluster-wide cap), :class:`Wakeups` the one pub/sub
connection per instance that wakes the :class:`RedisFollower` of each
resume that follows a call still running (here or on another instance). :class:`RedisClient` is the one
door to Redis: a deadline on every operation, :class:`StoreUnavailable`
(503 + ``Retry-After``) when Redis is missing, reconnection by itself.

Pipelines across processes (issue 17): :func:`open_group_source` reads a
stream through a consumer group and acknowledges an entry only once the
pipeline is done with it; :func:`stream_sink` appends to a stream, once per
key in idempotent mode; :func:`live_sources` and :func:`live_sinks` are those
alive in the process (``/metrics`` reads them). See docs/ops/redis.md.

See docs/scaling.md for the picture, the guarantees and the failure modes.
"""

from ._client import RedisClient, StoreUnavailable
from ._events import EventTooLarge, RedisEventStore, RedisFollower, Replay
from ._groups import Entry, GroupSource, GroupStatistics, live_sources, open_group_source
from ._keys import Keys
from ._sessions import RedisSessionStore, SessionCapReached
from ._shared import RedisShared, RedisSharedStore
from ._sink import SinkStatistics, StreamSink, live_sinks, stream_sink
from ._url import RedisURL
from ._wakeups import Wakeups, Watch

__all__ = [
    "Entry",
    "EventTooLarge",
    "GroupSource",
    "GroupStatistics",
    "Keys",
    "RedisClient",
    "RedisEventStore",
    "RedisFollower",
    "RedisSessionStore",
    "RedisShared",
    "RedisSharedStore",
    "RedisURL",
    "Replay",
    "SessionCapReached",
    "SinkStatistics",
    "StoreUnavailable",
    "StreamSink",
    "Wakeups",
    "Watch",
    "live_sinks",
    "live_sources",
    "open_group_source",
    "stream_sink",
]
