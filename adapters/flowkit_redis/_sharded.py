"""coredis's sharded subscriber, with each master's connection closed when it stops.

coredis 6.9's ``ShardedPubSub.run`` opens one connection per master of the
Cluster (at connect, whether or not a subscribed channel lives there) and
enters each into an ``AsyncExitStack`` that it never exits: the connections
outlive the subscriber, are released back to the command pool by the garbage
collector (still subscribed, if nothing unsubscribed them), and a connect that
fails on one master (it is down) leaves the others' to the collector too
(trio's "async generator was garbage collected" warning). :class:`ShardedPubSub`
here runs the same tasks but owns its connections: it closes each when it
stops, so none returns to the pool subscribed, and a failed connect leaks nothing.

It does not retry (the caller, :class:`~flowkit_redis.Wakeups`, reconnects,
after :func:`refresh_layout`).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import anyio
import trio
from coredis import RedisCluster
from coredis.exceptions import RedisError
from coredis.patterns.pubsub import ShardedPubSub as _CoredisShardedPubSub

__all__ = ["ShardedPubSub", "refresh_layout"]


async def refresh_layout(redis: RedisCluster[Any]) -> None:
    """Re-read which master serves which slot, best effort (the caller bounds it).

    coredis learns that a slot moved from a ``MOVED`` reply to a command on
    it; a subscriber whose channel's slot moved (the server sent it an
    ``sunsubscribe``) may watch a slot nothing else touches, and would send
    its ``SSUBSCRIBE`` to the old master for ever (which answers ``MOVED``,
    not a subscription). So it asks for the layout before it reconnects.
    """
    with suppress(RedisError, OSError):
        await redis.connection_pool.cluster_layout._refresh()


class ShardedPubSub(_CoredisShardedPubSub[bytes]):
    """One connection per master (replica if ``read_from_replicas``), closed on stop."""

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        pool = self.connection_pool
        layout = pool.cluster_layout
        nodes = layout.replicas if self._read_from_replicas else layout.primaries
        connections: dict[str, Any] = {}
        self.shard_connections = connections
        try:
            for node in nodes:
                if node.node_id:
                    connections[node.node_id] = await pool.get_connection(node=node)
            try:
                async with anyio.create_task_group() as group:
                    self._current_scope = group.cancel_scope
                    for connection in connections.values():
                        group.start_soon(self._consume_shard_push_messages, connection)
                        group.start_soon(self._shard_keepalive, connection)
                    task_status.started()
            finally:
                if self._current_scope.cancel_called:  # stopped, not lost: unsubscribe
                    with anyio.CancelScope(shield=True), trio.move_on_after(1):
                        await self._cleanup()
        finally:
            for connection in connections.values():
                connection.invalidate()  # subscribed: never back to the command pool
                pool.release(connection)  # its lease ends; an invalid one is dropped...
                # ...and its place in the node's queue given back, as coredis does
                # when a connect fails (release alone would shrink the pool).
                pool._node_pool(connection.location).append_nowait(None)
