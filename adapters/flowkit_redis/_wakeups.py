"""One pub/sub connection per instance, used only as a wake-up for followers of a stream.

A follower of a stream that another instance is writing (a client resumed here
while the call runs there) must learn of new entries without one blocking
``XREAD`` per stream: that exhausts the connection pool at a few hundred
streams. Instead every append publishes an empty message on the stream's
channel, and this instance keeps one subscriber that is subscribed to
exactly the channels its followers watch (refcounted).

On a Redis Cluster the subscriber is sharded (``SSUBSCRIBE``; the appends
``SPUBLISH``): a channel hashes to a slot like a key, and a message travels
to the shard owning that slot only, not over the cluster bus to every node
as a plain ``PUBLISH`` does. coredis's ``ShardedPubSub`` (made to close its
connections: ``_sharded``) holds one connection per master for it, opened at
connect whether or not a watched channel lives there; a channel's
subscription goes to its slot's master. One master down takes the whole
subscriber down until it is back (followers of every shard poll meanwhile).
A slot that moves (a failover, a resharding) makes the server unsubscribe
its channels (an ``sunsubscribe`` nobody asked for): the subscriber then
re-reads the layout, reconnects to its masters and subscribes again.

A wake-up carries no data and may be lost (pub/sub is at-most-once, and a
reconnect drops what was published meanwhile), so a follower re-reads the stream,
the only truth, on every wake-up *and* at least every poll interval; it keeps
its own cursor. Losing a wake-up costs latency, never an event.

The same connection carries the instance's control channel (:meth:`Wakeups.listening`):
messages with data that other instances send to the calls running here (a
cancel, an answer, a session's end). Those are at-most-once too: one sent
while this subscriber reconnects is lost (docs/scaling.md says what that costs).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import trio
from coredis import RedisCluster
from coredis.exceptions import PubSubError

from ._client import _UNAVAILABLE, RedisClient
from ._sharded import ShardedPubSub, refresh_layout

__all__ = ["Wakeups", "Watch"]

logger = logging.getLogger("flowkit_redis")


_MESSAGES = ("message", "smessage")  # a published message, plain or sharded
_UNSUBSCRIBED = ("unsubscribe", "sunsubscribe")


class Watch:
    """One follower's view of a channel: :meth:`arm` before reading, :meth:`wait` after."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def arm(self) -> None:
        """Start a new wait window (a wake-up from now on ends the next :meth:`wait`)."""
        if self._event.is_set():
            self._event = trio.Event()

    async def wait(self) -> None:
        """Until a wake-up arrived since the last :meth:`arm`."""
        await self._event.wait()

    def fire(self) -> None:
        self._event.set()


class Wakeups:
    """The instance's subscriber: channels in use, each with its local watchers.

    Start :meth:`run` in a nursery (``await nursery.start(wakeups.run)``); it
    reconnects by itself after Redis comes back and re-subscribes.

    Args:
        client: the instance's connection pool.
        sharded: subscribe with ``SSUBSCRIBE`` (a Redis Cluster's sharded
            pub/sub; publishers then use ``SPUBLISH``). ``None``: sharded
            on a Cluster (``client.cluster``), plain on a standalone Redis.
    """

    def __init__(self, client: RedisClient, *, sharded: bool | None = None) -> None:
        self._client = client
        self._sharded = client.cluster if sharded is None else sharded
        self._watchers: dict[str, set[Watch]] = {}
        self._handlers: dict[str, Callable[[bytes], None]] = {}
        self._pubsub: Any = None
        self._serving: trio.CancelScope | None = None
        self._moved = False  # a slot moved: refresh the layout before reconnecting
        # Unsubscribes sent, not yet acknowledged: any other unsubscribe of a
        # channel in use came from the server (its slot moved).
        self._unsubscribing: dict[str, int] = {}
        self.delivered = 0
        self.resubscribed = 0  # reconnects because the server unsubscribed a channel in use

    @property
    def sharded(self) -> bool:
        """Sharded pub/sub: publishers of its channels must ``SPUBLISH``."""
        return self._sharded

    @asynccontextmanager
    async def watching(self, channel: str) -> AsyncIterator[Watch]:
        """Watch ``channel`` for the duration of the block."""
        watch = Watch()
        watchers = self._watchers.setdefault(channel, set())
        watchers.add(watch)
        if len(watchers) == 1:
            await self._subscribe(channel)
        try:
            yield watch
        finally:
            watchers.discard(watch)
            if not watchers:
                del self._watchers[channel]
                with trio.CancelScope(shield=True), trio.move_on_after(self._client.timeout):
                    await self._unsubscribe(channel)

    @asynccontextmanager
    async def listening(
        self, channel: str, handler: Callable[[bytes], None]
    ) -> AsyncIterator[None]:
        """Hand every message published on ``channel`` to ``handler`` for the duration of the block.

        One handler per channel (an instance's control channel).
        """
        if channel in self._handlers or channel in self._watchers:
            raise ValueError(f"channel {channel!r} is already in use")
        self._handlers[channel] = handler
        await self._subscribe(channel)
        try:
            yield
        finally:
            del self._handlers[channel]
            with trio.CancelScope(shield=True), trio.move_on_after(self._client.timeout):
                await self._unsubscribe(channel)

    async def _subscribe(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # not connected: run() subscribes every watched channel on connect
        try:
            with trio.fail_after(self._client.timeout):
                await pubsub.subscribe(channel)
        except _UNAVAILABLE:
            pass  # run() re-subscribes every watched channel on reconnect; the follower polls
        except (KeyError, PubSubError):
            # Sharded: the channel's slot is on a master this subscriber has no
            # connection to (the layout changed since it connected).
            self._reconnect(moved=True)

    async def _unsubscribe(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or channel in self._watchers or channel in self._handlers:
            return
        self._unsubscribing[channel] = self._unsubscribing.get(channel, 0) + 1
        with suppress(*_UNAVAILABLE, KeyError, PubSubError):
            await pubsub.unsubscribe(channel)

    def _reconnect(self, *, moved: bool) -> None:
        """Drop the subscriber; :meth:`run` connects again and subscribes every channel.

        ``moved``: a slot moved; re-read the Cluster's layout first.
        """
        self._moved = self._moved or moved
        if self._serving is not None:
            self._serving.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Forever: hold the subscriber connection, dispatch wake-ups, reconnect.

        Reports started once the first connection is subscribed, or once it
        failed (followers poll while the subscriber is away).
        """
        started = False

        def connected() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while True:
            try:
                with trio.CancelScope() as self._serving:
                    await self._serve(connected)
                logger.info("wake-up subscriber: the cluster's layout changed; reconnecting")
            except* _UNAVAILABLE as group:
                logger.info(
                    "wake-up subscriber lost Redis (%s); reconnecting",
                    type(group.exceptions[0]).__name__,
                )
            finally:
                self._pubsub = None
                self._serving = None
                self._unsubscribing.clear()
            connected()
            # Wake every follower so none waits a full poll interval for what was
            # published while the subscriber was away.
            self._fire_all()
            await self._client.wait_up()
            await trio.sleep(self._client.timeout / 10)
            redis = self._client.redis
            if self._moved and isinstance(redis, RedisCluster):
                # Only then: a refresh asks every node, and coredis leaks a failed
                # connection's buffers (a master down); the command path's MOVED
                # replies refresh the layout otherwise.
                self._moved = False
                with trio.move_on_after(self._client.timeout):
                    await refresh_layout(redis)

    async def _serve(self, connected: Callable[[], None]) -> None:
        # The pool's connect and pool timeouts bound the connection attempt.
        redis = self._client.redis
        # Sharded (SSUBSCRIBE, a Cluster's): one connection per master, each
        # channel subscribed on its slot's; a publish travels to that shard only.
        pubsub: Any
        if self._sharded:
            assert isinstance(redis, RedisCluster)  # a Cluster client only
            pubsub = ShardedPubSub(redis.connection_pool)  # no retry policy: run() retries
        else:
            pubsub = redis.pubsub(retry_policy=None)
        async with pubsub:
            if self._watchers or self._handlers:
                with trio.fail_after(self._client.timeout):
                    await pubsub.subscribe(*self._watchers, *self._handlers)
            self._pubsub = pubsub
            connected()
            self._fire_all()
            while True:
                message = await pubsub.get_message()
                if message is None:
                    continue
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                kind = message.get("type")
                if kind in _UNSUBSCRIBED:
                    self._unsubscribed(name)
                if kind not in _MESSAGES:
                    continue
                handler = self._handlers.get(name)
                data = message.get("data")
                if handler is not None and isinstance(data, bytes):
                    handler(data)
                for watch in self._watchers.get(name, ()):
                    watch.fire()
                    self.delivered += 1

    def _unsubscribed(self, channel: str) -> None:
        """An unsubscribe of ``channel``: ours acknowledged, or the server's (its slot moved)."""
        pending = self._unsubscribing.get(channel, 0)
        if pending > 1:
            self._unsubscribing[channel] = pending - 1
        elif pending:
            del self._unsubscribing[channel]
        elif channel in self._watchers or channel in self._handlers:
            self.resubscribed += 1
            self._reconnect(moved=True)

    def _fire_all(self) -> None:
        for watchers in self._watchers.values():
            for watch in watchers:
                watch.fire()
