"""One pub/sub connection per instance, used only as a wake-up for followers of a stream.

A follower of a stream that another instance is writing (a client resumed here
while the call runs there) must learn of new entries without one blocking
``XREAD`` per stream: that exhausts the connection pool at a few hundred
streams. Instead every append publishes an empty message on the stream's
channel, and this instance keeps one subscriber connection that is
subscribed to exactly the channels its followers watch (refcounted).

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

from ._client import _UNAVAILABLE, RedisClient

__all__ = ["Wakeups", "Watch"]

logger = logging.getLogger("flowkit_redis")


_MESSAGES = ("message", "smessage")  # a published message, plain or sharded


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
            pub/sub; publishers then use ``SPUBLISH``).
    """

    def __init__(self, client: RedisClient, *, sharded: bool = False) -> None:
        self._client = client
        self._sharded = sharded
        self._watchers: dict[str, set[Watch]] = {}
        self._handlers: dict[str, Callable[[bytes], None]] = {}
        self._pubsub: Any = None
        self.delivered = 0

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

    async def _unsubscribe(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or channel in self._watchers or channel in self._handlers:
            return
        with suppress(*_UNAVAILABLE):
            await pubsub.unsubscribe(channel)

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
                await self._serve(connected)
            except* _UNAVAILABLE as group:
                logger.info(
                    "wake-up subscriber lost Redis (%s); reconnecting",
                    type(group.exceptions[0]).__name__,
                )
            finally:
                self._pubsub = None
            connected()
            # Wake every follower so none waits a full poll interval for what was
            # published while the subscriber was away.
            self._fire_all()
            await self._client.wait_up()
            await trio.sleep(self._client.timeout / 10)

    async def _serve(self, connected: Callable[[], None]) -> None:
        # The pool's connect and pool timeouts bound the connection attempt.
        redis = self._client.redis
        # Sharded (SSUBSCRIBE, a Cluster's): the subscriber connects to the
        # shard owning the channels' slots, and a publish travels to that shard only.
        opener = redis.pubsub
        if self._sharded:
            assert isinstance(redis, RedisCluster)  # RedisShared(cluster=True) only
            opener = redis.sharded_pubsub
        async with opener(ignore_subscribe_messages=True, retry_policy=None) as pubsub:
            if self._watchers or self._handlers:
                with trio.fail_after(self._client.timeout):
                    await pubsub.subscribe(*self._watchers, *self._handlers)
            self._pubsub = pubsub
            connected()
            self._fire_all()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True)
                if message is None or message.get("type") not in _MESSAGES:
                    continue
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                handler = self._handlers.get(name)
                data = message.get("data")
                if handler is not None and isinstance(data, bytes):
                    handler(data)
                for watch in self._watchers.get(name, ()):
                    watch.fire()
                    self.delivered += 1

    def _fire_all(self) -> None:
        for watchers in self._watchers.values():
            for watch in watchers:
                watch.fire()
