"""The key layout: every key a session owns carries the session id as its hash tag.

``<prefix>:{<session>}:...`` -- Redis Cluster hashes only the part between the
first ``{`` and ``}``, so all of one session's keys (its hash, its streams'
logs and their index) share a slot: the store's Lua scripts may touch several
of them at once, and a session never spans shards. A ``}`` inside a session
id (a client may send anything) only shortens the tag, identically for all of
that id's keys, which therefore still share a slot and stay distinct. The
cluster-wide keys are the session cap's sorted set and the instances' leases
(and definitions), each touched on its own; the control and broadcast
channels are per instance and per deployment.
"""

from __future__ import annotations

import attrs

__all__ = ["Keys"]


@attrs.frozen
class Keys:
    """Key names under one ``prefix`` (one prefix per deployment, or per test)."""

    prefix: str = "flowkit"

    def session(self, session_id: str) -> str:
        """The session's hash."""
        return f"{self.prefix}:{{{session_id}}}:session"

    def running(self, session_id: str) -> str:
        """The session's running calls (a hash: request id as JSON -> stream id)."""
        return f"{self.prefix}:{{{session_id}}}:running"

    def attached(self, session_id: str) -> str:
        """The session's streams that a response carries right now (a set)."""
        return f"{self.prefix}:{{{session_id}}}:attached"

    def stream(self, session_id: str, stream_id: str) -> str:
        """One MCP stream's event log (a Redis stream)."""
        return f"{self.prefix}:{{{session_id}}}:events:{stream_id}"

    def streams(self, session_id: str) -> str:
        """The set of the session's stream ids (to forget them all at once)."""
        return f"{self.prefix}:{{{session_id}}}:streams"

    def wake(self, session_id: str, stream_id: str) -> str:
        """The pub/sub channel that wakes the followers of one stream."""
        return f"{self.prefix}:{{{session_id}}}:wake:{stream_id}"

    def control(self, instance: str) -> str:
        """The pub/sub channel of one instance's control bus (what reaches its calls)."""
        return f"{self.prefix}:control:{instance}"

    def broadcast(self) -> str:
        """The pub/sub channel every instance listens to (notifications for all listeners)."""
        return f"{self.prefix}:broadcast"

    def lease(self, instance: str) -> str:
        """One instance's lease: present while it lives (a key with a TTL it renews)."""
        return f"{self.prefix}:lease:{instance}"

    def definitions(self) -> str:
        """Which instance serves which definition (a hash: instance -> digest)."""
        return f"{self.prefix}:definitions"

    def live_sessions(self) -> str:
        """The cluster-wide sorted set behind the session cap (member: id, score: deadline)."""
        return f"{self.prefix}:sessions"
