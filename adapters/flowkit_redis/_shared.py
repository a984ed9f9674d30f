"""The core's shared-state boundary, kept in Redis: :class:`RedisSharedStore`.

``flowkit.mcp``'s shared endpoint (``Endpoint(instance=...)``) does no I/O.
Before a request it names what the request touches (``StateKeys``); the
adapter reads that here (:meth:`RedisSharedStore.load`) and passes it in.
After the request, and after a stream emitted, the adapter takes the core's
changes and writes them here (:meth:`RedisSharedStore.apply`) **before**
sending the bytes they belong to. That ordering is the whole of "no event a
client has seen can be missing from a replay" (docs/scaling.md).

The hot path is a stream's events: :meth:`apply` stores each run of
consecutive events of one stream (what one socket write carries) as one
entry, one round trip.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import orjson
import trio

from flowkit.mcp import EndpointConfig
from flowkit.mcp._shared import (
    AnswerForwarded,
    Broadcast,
    CallEnded,
    CallStarted,
    CancelForwarded,
    Change,
    Control,
    EventAppended,
    Loaded,
    SessionClosed,
    SessionRecord,
    SessionSaved,
    SessionTouched,
    StateKeys,
    StreamAttached,
    StreamDetached,
    StreamEnded,
    SubscriptionChanged,
    subscriptions_message,
)

from ._batch import Batch, Call
from ._client import RedisClient, StoreUnavailable
from ._events import RedisEventStore, RedisFollower
from ._keys import Keys
from ._sessions import RedisSessionStore, instance_of
from ._url import RedisURL
from ._wakeups import Wakeups

__all__ = ["DEFAULT_LEASE_TTL", "RedisShared", "RedisSharedStore"]

logger = logging.getLogger("flowkit_redis")


class RedisShared:
    """Share an ``MCPServer``'s state through Redis: ``MCPServer(shared=RedisShared(url))``.

    The server opens it for as long as it serves (:meth:`open`): one
    connection pool, one wake-up subscriber, and the stores sized by the
    endpoint's config (its idle timeout is the sessions' TTL, its
    ``max_sessions`` the cluster-wide cap).

    Args:
        url: ``redis://`` or ``rediss://``, with ``user:password@`` if needed.
        prefix: the key prefix (one per deployment sharing a Redis).
        cluster: ``url`` is one node of a Redis Cluster.
        timeout: the deadline of one Redis operation (the 503 comes within it).
        announce_interval: seconds between announcements of this instance's
            definition digest (see :meth:`open`).
        max_pending_bytes: the most event bytes this instance keeps in memory
            while Redis is unreachable (16 MiB); beyond it the streams they
            belong to are given up: each call ends with a JSON-RPC error
            stored for its client, never a silent gap (docs/scaling.md).
        lease_ttl: seconds an instance's lease lives without renewal (it
            renews it every third of that): a follower elsewhere of a call
            whose instance's lease expired ends it with the lost-call error
            (-32010) within about this long after the instance died. ``None``:
            ``FLOWKIT_REDIS_LEASE_TTL`` from the environment if set (how
            ``flowkit serve --redis`` takes it), else 10 s.
        events: settings for :class:`RedisEventStore` (``ttl``,
            ``max_entries_per_stream``, ``max_entry_bytes``, ...).
    """

    def __init__(
        self,
        url: RedisURL | str,
        *,
        prefix: str = "flowkit",
        cluster: bool = False,
        timeout: float = 1.0,
        announce_interval: float = 30.0,
        max_pending_bytes: int = 16 << 20,
        lease_ttl: float | None = None,
        **events: Any,
    ) -> None:
        self.lease_ttl = _lease_ttl(lease_ttl)
        if isinstance(max_pending_bytes, bool) or max_pending_bytes < 0:
            raise ValueError(f"max_pending_bytes must be an int >= 0, not {max_pending_bytes!r}")
        self.max_pending_bytes = max_pending_bytes
        self.url = url if isinstance(url, RedisURL) else RedisURL.parse(url)
        self.keys = Keys(prefix)
        self.cluster = cluster
        self.timeout = timeout
        self.announce_interval = announce_interval
        self.events = events

    def __repr__(self) -> str:
        return f"RedisShared({self.url.redacted()!r}, prefix={self.keys.prefix!r})"

    @asynccontextmanager
    async def open(
        self, config: EndpointConfig, *, instance: str, digest: str
    ) -> AsyncIterator[RedisSharedStore]:
        """Connect, announce this instance's definition, start the subscriber, yield the store.

        Every instance must serve the same tools (a request may land on any).
        Each instance announces its definition's digest in ``Keys.definitions``
        (instance -> "digest time") every ``announce_interval`` seconds and
        drops announcements three intervals old (instances that died); when
        the instances announcing another digest change, it logs them at ERROR.
        """
        async with (
            RedisClient.connect(self.url, timeout=self.timeout, cluster=self.cluster) as client,
            trio.open_nursery() as nursery,
        ):
            wakeups = Wakeups(client)
            await nursery.start(wakeups.run)
            sessions = RedisSessionStore(
                client,
                keys=self.keys,
                idle_timeout=config.session_idle_timeout,
                max_sessions=config.max_sessions,
            )
            events = RedisEventStore(client, wakeups, keys=self.keys, **self.events)
            announcer = _Announcer(
                client, self.keys.definitions(), instance, digest, self.announce_interval
            )
            await announcer.announce()
            nursery.start_soon(announcer.run)
            lease = _Lease(client, self.keys.lease(instance), self.lease_ttl)
            await lease.renew()
            nursery.start_soon(lease.run)
            try:  # one subscriber (sharded on a Cluster) for the wake-ups and the control bus
                yield RedisSharedStore(
                    sessions, events, instance=instance, carried_wait=self.lease_ttl
                )
            finally:
                with trio.CancelScope(shield=True):
                    await announcer.withdraw()
                    await lease.withdraw()
                nursery.cancel_scope.cancel()


_CARRIED_POLL = (0.005, 0.25, 0.1)
"""How a resume waits for a carried stream (``_until_uncarried``): a look every
5 ms for the first 0.25 s (a client that left is noticed, and its detach stored,
within milliseconds: as soon as a client retrying a 409 would get through),
then every 0.1 s (a dead instance's lease takes seconds to lapse)."""

DEFAULT_LEASE_TTL = 10.0
"""Seconds an instance's lease lives unrenewed (``RedisShared(lease_ttl=)``)."""


def _lease_ttl(value: float | None) -> float:
    """``lease_ttl``, or ``FLOWKIT_REDIS_LEASE_TTL``, or the default; checked."""
    name = "lease_ttl"
    if value is None:
        text = os.environ.get("FLOWKIT_REDIS_LEASE_TTL")
        if text is None:
            return DEFAULT_LEASE_TTL
        name = "FLOWKIT_REDIS_LEASE_TTL"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number of seconds, not {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0.1:
        raise ValueError(f"{name} must be a number of seconds >= 0.1, not {value!r}")
    return float(value)


class _Lease:
    """This instance's lease key, renewed every third of its TTL while it serves.

    The key is what tells other instances it lives: a follower of one of its
    calls reports the call lost once the key expired (the instance died, or
    was cut from Redis for a whole TTL).
    """

    def __init__(self, client: RedisClient, key: str, ttl: float) -> None:
        self._client = client
        self._key = key
        self._ttl_ms = max(10, round(ttl * 1000))

    async def run(self) -> None:
        while True:
            await trio.sleep(self._ttl_ms / 3000)
            await self.renew()

    async def renew(self) -> None:
        key, ttl = self._key, self._ttl_ms
        with contextlib.suppress(StoreUnavailable):  # renewed again a third of a TTL later
            await self._client.run(lambda redis: redis.set(key, "1", px=ttl))

    async def withdraw(self) -> None:
        """Drop the lease (a clean stop: its calls were cancelled, their streams ended)."""
        with trio.move_on_after(self._client.timeout), contextlib.suppress(Exception):
            await self._client.redis.delete([self._key])


class _Announcer:
    """This instance's entry in the definitions hash, kept fresh; mismatches logged."""

    def __init__(
        self, client: RedisClient, key: str, instance: str, digest: str, interval: float
    ) -> None:
        self._interval = interval
        self._client = client
        self._key = key
        self._instance = instance
        self._digest = digest
        self._reported: list[str] = []

    async def run(self) -> None:
        while True:
            await trio.sleep(self._interval)
            await self.announce()

    async def announce(self) -> None:
        key, instance, digest = self._key, self._instance, self._digest

        async def exchange(redis: Any) -> Any:
            seconds = (await redis.time()).timestamp()
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, {instance: f"{digest} {seconds:.0f}"})
                everyone = pipe.hgetall(key)
            return seconds, await everyone

        try:
            now, announced = await self._client.run(exchange)
        except StoreUnavailable:
            return  # announced again next interval
        stale, differ = [], []
        for name, value in announced.items():
            other, _, when = value.decode().partition(" ")
            if now - float(when or 0) > 3 * self._interval:
                stale.append(name)
            elif other != digest:
                differ.append(name.decode())
        if stale:
            with contextlib.suppress(StoreUnavailable):
                await self._client.run(lambda redis: redis.hdel(key, stale))
        differ.sort()
        if differ and differ != self._reported:
            logger.error(
                "instance %s serves definition %s but %s serve(s) another: every instance "
                "behind one balancer must serve the same tools (docs/scaling.md)",
                instance,
                digest,
                ", ".join(differ),
            )
        self._reported = differ

    async def withdraw(self) -> None:
        """Remove this instance's entry (a clean stop)."""
        # Best effort, and not through run(): at shutdown the pool may already
        # be torn down, which is no outage worth reporting. An entry left
        # behind is dropped by the others three intervals later.
        with trio.move_on_after(self._client.timeout), contextlib.suppress(Exception):
            await self._client.redis.hdel(self._key, [self._instance])


class RedisSharedStore:
    """A ``flowkit.mcp`` ``SharedStore`` over Redis: sessions plus events.

    Args:
        sessions: the session store (records, running calls, carried
            streams, the cap, expiry).
        events: the event store (one Redis stream per MCP stream).
        instance: this instance's id (the stream ids it makes start with it).
        bus: the subscriber of this instance's control channel (sharded on
            a Cluster); ``None``: the event store's wake-up subscriber.
        carried_wait: seconds a resume of a stream that a live instance's
            response still carries waits for that response to end or that
            instance's lease to lapse before it is a conflict (409);
            :class:`RedisShared` passes its ``lease_ttl``. ``0``: at once.
    """

    def __init__(
        self,
        sessions: RedisSessionStore,
        events: RedisEventStore,
        *,
        instance: str = "",
        bus: Wakeups | None = None,
        carried_wait: float = 0.0,
    ) -> None:
        self.sessions = sessions
        self.carried_wait = carried_wait
        self.events = events
        self.instance = instance
        self._bus = bus if bus is not None else events._wakeups

    async def control(self, deliver: Callable[[Control | Broadcast], None]) -> None:
        """Forever: hand what other instances send this one to ``deliver``.

        Its own control channel (what reaches its calls) and the broadcast
        channel (notifications for every instance's listeners; its own are
        skipped). Pub/sub, at most once: a message sent while the subscriber
        reconnects is lost (docs/scaling.md).
        """

        def broadcast(data: bytes) -> None:
            try:
                sender, message = orjson.loads(data)
            except (orjson.JSONDecodeError, TypeError, ValueError):
                logger.warning("ignored a malformed broadcast: %r", data[:200])
                return
            if sender != self.instance and isinstance(message, str):
                deliver(Broadcast(message.encode()))

        def received(data: bytes) -> None:
            try:
                session_id, message = orjson.loads(data)
            except (orjson.JSONDecodeError, TypeError, ValueError):
                logger.warning("ignored a malformed control message: %r", data[:200])
                return
            if isinstance(session_id, str) and (message is None or isinstance(message, str)):
                deliver(Control(session_id, message.encode() if message is not None else None))

        keys = self.sessions.keys
        async with (
            self._bus.listening(keys.control(self.instance), received),
            self._bus.listening(keys.broadcast(), broadcast),
        ):
            await trio.sleep_forever()

    async def _send(self, instance: str, session_id: str, data: bytes | None) -> None:
        """Publish a control message to ``instance`` (its calls run there)."""
        channel = self.sessions.keys.control(instance)
        message = orjson.dumps([session_id, data.decode() if data is not None else None])
        await self._publish(channel, message)

    async def _publish(self, channel: str, message: bytes) -> None:
        if self._bus._sharded:
            await self.sessions._client.run(lambda redis: redis.spublish(channel, message))
        else:
            await self.sessions._client.run(lambda redis: redis.publish(channel, message))

    async def ping(self) -> None:
        """Redis answers (``/readyz``).

        Raises:
            StoreUnavailable: it does not, within the client's deadline.
        """
        await self.sessions._client.run(lambda redis: redis.ping())

    async def load(self, keys: StateKeys) -> Loaded:
        """Read what a request touches: its session, a resumed stream's later events, the count.

        Raises:
            StoreUnavailable: Redis cannot be reached (answer 503).
        """
        session = None
        replay: list[bytes] | None = None
        last, ended = -1, False
        if keys.session_id is not None:
            session = await self.sessions.load(keys.session_id)
            if session is not None and keys.resume is not None:
                session = await self._until_uncarried(session, keys.resume.stream_id)
            if session is not None and keys.resume is not None:
                found = await self.events.replay(
                    keys.session_id, keys.resume.stream_id, keys.resume.seq
                )
                if found is not None:
                    replay = [data async for chunk in found for data in chunk]
                    last, ended = found.last_seq, found.ended
        live = await self.sessions.count() if keys.count_sessions else 0
        return Loaded(
            session=session,
            replay=replay,
            live_sessions=live,
            replay_last=last,
            replay_ended=ended,
        )

    async def _until_uncarried(
        self, session: SessionRecord, stream_id: str
    ) -> SessionRecord | None:
        """``session``, once no live instance carries ``stream_id``; ``None`` if it ended meanwhile.

        An instance killed while a response carried the stream never stored
        that its client left: without the lease check a resume would be a
        conflict (409) for ever, instead of following the stream to its
        lost-call error. And while that instance's lease lives, the resume
        waits (up to ``carried_wait``, polling with ``_CARRIED_POLL``) for the
        response to end (its client left: the instance stores the detach once
        it notices) or the lease to lapse (it died), rather than answering 409
        at once: clients retry a 409 only a few times (the official Python
        SDK twice, a second apart), fewer than a 10 s lease lasts, so they
        gave up before the lost-call error could reach them. A stream still
        carried after ``carried_wait`` is a conflict, as before.
        """
        instance = instance_of(stream_id)
        if instance == self.instance:
            return session
        lease = self.sessions.keys.lease(instance)
        start = trio.current_time()
        deadline = start + self.carried_wait
        often, early, later = _CARRIED_POLL
        while stream_id in session.attached:
            if not await self.sessions._client.run(lambda redis: redis.exists([lease])):
                return attrs.evolve(session, attached=session.attached - {stream_id})
            if trio.current_time() >= deadline:
                return session
            now = trio.current_time()
            await trio.sleep(min(often if now - start < early else later, deadline - now))
            reloaded = await self.sessions.load(session.id)
            if reloaded is None:
                return None  # deleted or expired while it waited: the core answers 404
            session = reloaded
        return session

    def follow(
        self, session_id: str, stream_id: str, after: int
    ) -> AbstractAsyncContextManager[RedisFollower]:
        """Follow a stream's stored events after seq ``after`` (the core's ``Resume.follow``)."""
        return self.events.follow(session_id, stream_id, after)

    async def apply(self, changes: Sequence[Change]) -> None:
        """Write ``changes`` in order, in as few round trips as order allows.

        A run of one stream's events is one entry. Everything between two
        changes that take several steps (a session saved or closed) goes in
        one pipeline: one round trip for a call's start, its stream's first
        write, the session's touch.

        Raises:
            SessionCapReached: a new session over the cluster-wide cap.
            StoreUnavailable: Redis cannot be reached: do not send the bytes
                these changes belong to.
        """
        # Runs of one stream's consecutive events (one socket write's worth),
        # each stored as one entry; a stream that ends in this batch has its
        # last run carry the end flag (the same round trip), unless it has
        # none here. One pass, no call per event: this is the hot path.
        runs: list[tuple[int, int]] = []  # [start, end) of each run
        last_run: dict[tuple[str, str], int] = {}  # stream -> index of its last run
        ending: set[tuple[str, str]] = set()
        start = -1
        previous: Any = None
        for index, change in enumerate(changes):
            kind = type(change)
            if kind is EventAppended:
                if (
                    previous is None
                    or change.stream_id != previous.stream_id  # type: ignore[union-attr]
                    or change.session_id != previous.session_id  # type: ignore[union-attr]
                    or change.seq != previous.seq + 1  # type: ignore[union-attr]
                ):
                    if previous is not None:
                        runs.append((start, index))
                    start = index
                previous = change
                continue
            if previous is not None:
                runs.append((start, index))
                previous = None
            if kind is StreamEnded:
                ending.add((change.session_id, change.stream_id))  # type: ignore[union-attr]
        if previous is not None:
            runs.append((start, len(changes)))
        for number, (first, _) in enumerate(runs):
            head: Any = changes[first]
            last_run[head.session_id, head.stream_id] = number
        flagged: set[tuple[str, str]] = set()
        batch = Batch(self.sessions._client)  # everything up to a multi-step change: one trip
        run_at = {first: (number, end) for number, (first, end) in enumerate(runs)}
        index = 0
        while index < len(changes):
            change = changes[index]
            found = run_at.get(index)
            if found is not None:
                number, end = found
                head = change
                stream = (head.session_id, head.stream_id)
                final = stream in ending and last_run[stream] == number
                call = self.events.append_call(
                    head.session_id,
                    head.stream_id,
                    head.seq,
                    [event.data for event in changes[index:end]],  # type: ignore[union-attr]
                    final=final,
                )
                if call is not None:
                    batch.add([call])
                if final:
                    flagged.add(stream)
                index = end
                continue
            if isinstance(change, Broadcast):
                message = orjson.dumps([self.instance, change.data.decode()])
                await self._publish(self.sessions.keys.broadcast(), message)
            elif isinstance(
                change,
                SessionSaved
                | SessionClosed
                | CancelForwarded
                | AnswerForwarded
                | SubscriptionChanged,
            ):
                await batch.send()  # in order: what came before is stored first
                await self._apply_alone(change)
            elif not (
                isinstance(change, StreamEnded) and (change.session_id, change.stream_id) in flagged
            ):
                batch.add(self._calls(change))
            index += 1
        await batch.send()

    async def _apply_alone(
        self,
        change: SessionSaved
        | SessionClosed
        | CancelForwarded
        | AnswerForwarded
        | SubscriptionChanged,
    ) -> None:
        """The changes that take several steps (the cap's admission, a session's end, forwards)."""
        if isinstance(change, SessionSaved):
            await self.sessions.save(change.record)
        elif isinstance(change, SessionClosed):
            # Where its calls run and its streams are carried, before they are forgotten.
            holders = await self.sessions.holders(change.session_id) - {self.instance}
            await self.sessions.close(change.session_id)
            await self.events.forget_session(change.session_id)
            for instance in sorted(holders):
                await self._send(instance, change.session_id, None)
        elif isinstance(change, SubscriptionChanged):
            # Stored, then told to each instance carrying a stream of the
            # session (this one too: a change elsewhere may have crossed
            # ours); the one with the GET stream writes its updates.
            changed = await self.sessions.subscribe(
                change.session_id, change.uri, change.subscribed
            )
            if changed is not None:
                version, uris, carriers = changed
                data = subscriptions_message(uris, version)
                for instance in sorted(carriers):
                    await self._send(instance, change.session_id, data)
        elif isinstance(change, CancelForwarded):
            runner = await self.sessions.runner(change.session_id, change.request_id)
            if runner is not None and runner != self.instance:
                await self._send(runner, change.session_id, change.data)
        else:
            await self._send(change.instance, change.session_id, change.data)

    def _calls(self, change: Change) -> list[Call]:
        """The script calls of one change that goes into the batch."""
        sessions = self.sessions
        if isinstance(change, SessionTouched):
            return sessions.touch_calls([change.session_id])
        if isinstance(change, CallStarted):
            return [
                sessions.call_started_call(change.session_id, change.request_id, change.stream_id)
            ]
        if isinstance(change, CallEnded):
            return [sessions.call_ended_call(change.session_id, change.request_id)]
        if isinstance(change, StreamAttached):
            return [sessions.attach_call(change.session_id, change.stream_id)]
        if isinstance(change, StreamDetached):
            return [sessions.detach_call(change.session_id, change.stream_id)]
        if isinstance(change, StreamEnded):
            return [self.events.end_call(change.session_id, change.stream_id)]
        raise AssertionError(f"not a batched change: {change!r}")
