"""Driving a shared endpoint's store: load before each request, write before bytes go out.

With ``MCPServer(shared=...)`` the endpoint is ``Endpoint(instance=...)``: its
state lives in a store that several instances share (flowkit_redis). The core
does no I/O, so this adapter does it, in the order that makes resumption
exact (docs/scaling.md):

1. before a request: ``state_keys`` -> ``await store.load`` -> ``receive_request(loaded=)``;
2. after the request, and before any bytes a stream produced are written:
   ``take_changes`` -> ``await store.apply``;
3. a resume of a stream that has not ended (``Resume.follow``, wherever its
   call runs): the replay, then :meth:`SharedState.follow` writes what the
   store appends after it, until the stream's end.

Applies go in *rounds*, one at a time per instance, and each round takes
everything pending, so a stream's events reach the store in order, and a
writer that returns from :meth:`SharedState.sync` knows everything journaled
before it asked is stored. A writer does not queue for a round of its own: it
waits for the first round that starts after it asked (a group commit), and
the first writer to find no round running leads the next. With a lock per
apply instead, 500 timed streams made a convoy: each writer held the lock for
a whole turn of trio's loop, mostly to find its events already stored, and
ticks waited 400 ms for it (docs/scaling.md, "Many streams on one instance:
the write rounds"). Changes whose apply failed are kept and written first by
the next round, and every writer whose round failed is refused, so none can
send bytes whose events were not stored; a round's leader cancelled mid-write
(its client left) still finishes storing what it took. A store that fails
(Redis down or slow) is a 503 with ``Retry-After`` for the request, never a
crash or a hang.

While the store is unreachable, the kept changes are bounded
(``max_pending_bytes`` of events): beyond it, the streams whose events are
kept are given up (``Endpoint.abandon_streams``: each call ends with a
JSON-RPC error filed after what was stored, each GET stream files the
events-lost marker, so a client that resumes once the store is back is told,
never shown a silent gap), and their kept events are dropped. Streams that
already ended are not given up; their events stay (they no longer grow).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import orjson
import trio

from flowkit.mcp import (
    Action,
    Endpoint,
    EndpointConfig,
    OutgoingStream,
    Reply,
    Resume,
    encode_comment,
)
from flowkit.mcp._shared import (
    Broadcast,
    Change,
    Control,
    EventAppended,
    Loaded,
    SessionTouched,
    SharedStore,
    StateKeys,
)

__all__ = [
    "DEFAULT_MAX_PENDING_BYTES",
    "SharedState",
    "SharedStoreOpener",
    "StoreFailed",
    "definition_digest",
]

DEFAULT_MAX_PENDING_BYTES = 16 << 20
"""Event bytes an instance keeps while its shared store fails (``max_pending_bytes``)."""

_LOST = (
    "Events of this call could not be stored while the shared store was unavailable; "
    "it was stopped (resumption would have skipped them)"
)

logger = logging.getLogger("flowkit_http")


_UNAVAILABLE_BODY = (
    b'{"jsonrpc":"2.0","id":null,'
    b'"error":{"code":-32000,"message":"Service unavailable; retry later"}}'
)


class SharedStoreOpener(Protocol):
    """What ``MCPServer(shared=...)`` takes: opens the store for the serving lifetime."""

    def open(
        self, config: EndpointConfig, *, instance: str, digest: str
    ) -> AbstractAsyncContextManager[SharedStore]:
        """The store, sized by the endpoint's config (idle timeout, session cap).

        ``instance`` names this instance and ``digest`` its definitions
        (:func:`definition_digest`): the store announces them, so instances
        serving different tools are noticed (every instance must serve the
        same definition).
        """


def definition_digest(endpoint: Endpoint) -> str:
    """A digest of what an endpoint serves: server name and version, every tool's definition.

    Two instances with the same digest answer ``tools/list`` alike; a request
    may land on either.
    """
    config = endpoint.config
    definition = {
        "server": [config.server_name, config.server_version],
        "tools": sorted((tool.to_json() for tool in endpoint.tools), key=lambda t: t["name"]),
    }
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class StoreFailed(Exception):
    """The shared store could not serve this request: answer :attr:`reply` (503)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__("the shared store is unavailable")
        self.reply = reply


def _unavailable(exc: Exception) -> StoreFailed:
    """A 503 for any store failure: the store's ``retry_after`` if it has one, else 1 s."""
    retry = getattr(exc, "retry_after", 1)
    if isinstance(retry, bool) or not isinstance(retry, int | float) or not retry >= 1:
        retry = 1
    logger.warning("shared store unavailable (%s): 503, Retry-After %d", exc, math.ceil(retry))
    headers = (
        (b"content-type", b"application/json"),
        (b"retry-after", str(math.ceil(retry)).encode("ascii")),
    )
    return StoreFailed(Reply(503, headers, _UNAVAILABLE_BODY))


class SharedState:
    """One instance's driver of its shared store.

    Args:
        store: the opened store.
        max_pending_bytes: the most event bytes kept while the store fails;
            beyond it the streams they belong to are given up.
        stop: stops the work and responses of given-up streams (the app's cancel).
        flush_interval: how often :meth:`flush` writes what no writer did
            (late changes) while no call runs here.
        busy_flush_interval: the same while calls run here: the events of a
            call whose client is away must reach the store promptly, since a
            resume elsewhere follows them there (this is their live latency).
    """

    def __init__(
        self,
        store: SharedStore,
        *,
        flush_interval: float = 0.05,
        busy_flush_interval: float = 0.005,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        stop: Callable[[tuple[OutgoingStream, ...]], None] = lambda streams: None,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.busy_flush_interval = busy_flush_interval
        self.max_pending_bytes = max_pending_bytes
        self._stop = stop
        self.abandoned = 0  # streams given up at the bound
        self._synced_at = -math.inf  # when an apply last succeeded
        # Changes taken from the core whose apply failed: written first next
        # time (every change is idempotent: explicit event ids, set/hash writes).
        self._pending: tuple[Change, ...] = ()
        self._busy: trio.Event | None = None  # set when the apply in progress ends
        self._rounds = 0  # rounds started
        self._stored = 0  # the last round that succeeded: all taken by then is stored
        self._failed = 0  # the last round that failed
        self._failure: Reply | None = None  # its refusal
        self._touched: dict[str, float] = {}  # busy session -> its last heartbeat touch

    async def flush(self, endpoint: Endpoint) -> None:
        """Forever: write the pending changes (nothing if none), at the interval that applies."""
        while True:
            interval = self.busy_flush_interval if endpoint.state.running else self.flush_interval
            await trio.sleep(interval)
            if trio.current_time() - self._synced_at < interval:
                continue  # a writer is syncing: a flush now would split its next write
            with contextlib.suppress(StoreFailed):  # logged; the next round tries again
                await self.sync(endpoint)

    async def load(
        self, endpoint: Endpoint, method: str, headers: list[tuple[bytes, bytes]]
    ) -> Loaded | None:
        """What this request touches, read from the store.

        Raises:
            StoreFailed: the store failed; send its reply.
        """
        keys = endpoint.state_keys(method, headers)
        if keys is None:
            return None
        # This instance's own pending changes first (a response that just
        # ended here): a request reads what this instance has written.
        await self.sync(endpoint)
        try:
            return await self.store.load(keys)
        except Exception as exc:
            raise _unavailable(exc) from None

    async def sync(self, endpoint: Endpoint) -> None:
        """Write every pending change; on return, all journaled so far is stored.

        Raises:
            StoreFailed: the store failed; the bytes these changes belong to must not be sent.
        """
        if self._pending or endpoint.has_changes():
            need = self._rounds + 1  # the next round to start takes them
        elif self._busy is not None:
            need = self._rounds  # the round in progress may hold them
        else:
            return
        while self._stored < need:
            if self._failed >= need:
                assert self._failure is not None
                raise StoreFailed(self._failure)
            if self._busy is not None:
                await self._busy.wait()
                continue
            await self._round(endpoint)

    async def _round(self, endpoint: Endpoint) -> None:
        """Take every pending change and apply it; wakes the writers waiting for it."""
        self._rounds += 1
        number = self._rounds
        self._busy = busy = trio.Event()
        try:
            changes = self._pending + endpoint.take_changes()
            # Taken from the core, these exist nowhere else: a leader cancelled
            # here (its client left) must not drop them, so the write is
            # shielded (the store's own deadline bounds it) and kept on failure.
            self._pending = changes
            try:
                with trio.CancelScope(shield=True):
                    await self.store.apply(changes)
            except Exception as exc:
                self._bound(endpoint)
                failed = _unavailable(exc)
                self._failed, self._failure = number, failed.reply
                raise failed from None
            self._pending = ()
            self._stored = number
            self._synced_at = trio.current_time()
        finally:
            self._busy = None
            busy.set()

    def _bound(self, endpoint: Endpoint) -> None:
        """Beyond ``max_pending_bytes`` of kept events: give their streams up, drop the events."""
        kept = sum(len(c.data) for c in self._pending if type(c) is EventAppended)
        if kept <= self.max_pending_bytes:
            return
        kept_for = {(c.session_id, c.stream_id) for c in self._pending if type(c) is EventAppended}
        # Their errors and markers go to the journal. A stream that already
        # ended is not given up (nothing could be filed after its end): its
        # events stay, and they no longer grow.
        stopped = endpoint.abandon_streams(kept_for, _LOST)
        lost = {(s.session_id, s.stream_id) for s in stopped}
        self._pending = tuple(
            c
            for c in self._pending
            if not (type(c) is EventAppended and (c.session_id, c.stream_id) in lost)
        )
        self.abandoned += len(lost)
        logger.error(
            "shared store unreachable with %d bytes of events kept (max_pending_bytes=%d): "
            "%d stream(s) given up, each call ended with an error for its client",
            kept,
            self.max_pending_bytes,
            len(lost),
        )
        self._stop(stopped)

    async def follow(
        self,
        endpoint: Endpoint,
        action: Resume,
        write: Callable[[bytes], Awaitable[None]],
        keepalive_interval: float,
    ) -> None:
        """Write what the store appends to a resumed stream after ``action.follow``, to its end.

        Read after the cursor; when nothing came, wait for the wake-up (or
        the store's poll) and read again, until the stream's end (its final
        event was written) or until it is gone. Each event is written once,
        in order: the cursor only moves forward, from the replay's last seq.
        A stream silent for ``keepalive_interval`` gets a comment. A store
        failure ends the response: the client has seen only stored events,
        so its next resume misses none. Cancelled when the client leaves.
        """
        assert action.follow is not None
        try:
            opened = self.store.follow(action.session_id, action.stream_id, action.follow)
            async with opened as follower:
                last = trio.current_time()
                while True:
                    events = await follower.read()
                    if events:
                        await write(b"".join(events))
                        last = trio.current_time()
                    if follower.ended:
                        return
                    if not events:
                        await follower.wait()
                        lost = follower.lost
                        if lost is not None:  # its instance died: file the error, read it
                            stream_id, seq = action.stream_id, follower.last_seq
                            endpoint.call_lost(action.session_id, stream_id, lost, seq)
                            await self.sync(endpoint)
                            continue
                        if trio.current_time() - last >= keepalive_interval * 0.75:
                            await write(encode_comment())
                            last = trio.current_time()
        except Exception as exc:
            _unavailable(exc)  # logs; the response ends and the client resumes
        finally:
            endpoint.follow_finished(action.session_id, action.stream_id)
            with contextlib.suppress(StoreFailed):  # logged; kept for the next sync
                await self.sync(endpoint)

    async def control(
        self,
        endpoint: Endpoint,
        act: Callable[[Action], None],
        notify: Callable[[tuple[tuple[OutgoingStream, bytes], ...]], None],
    ) -> None:
        """Forever: what other instances send here, acted on.

        A message for a call goes to ``Endpoint.receive_forwarded``; ``act``
        carries out the action (stops a call, delivers an answer). A
        notification for every instance goes to ``Endpoint.receive_broadcast``;
        ``notify`` queues its events on the listening streams here. The
        changes they make (a call's end) are written by the next sync or flush.
        """

        def deliver(message: Control | Broadcast) -> None:
            if isinstance(message, Broadcast):
                notify(endpoint.receive_broadcast(message))
                return
            action = endpoint.receive_forwarded(message)
            if action is not None:
                act(action)

        await self.store.control(deliver)

    async def listening(self, endpoint: Endpoint, session_id: str) -> None:
        """A GET stream of the session opened here, and the store knows it: read the session again.

        Its ``resources/subscribe`` may be served by any instance, which
        tells the instances the store says carry the session's streams
        (``SubscriptionChanged``). One served after this request's load but
        before its ``StreamAttached`` was stored saw no stream here: this
        second read (one round trip per GET stream) has it. Every change
        is thus either read here or told here; the newer view wins
        (``SessionRecord.subscriptions_version``). A failure is logged: the
        stream keeps the subscriptions of the first read.
        """
        try:
            loaded = await self.store.load(StateKeys(session_id=session_id))
        except Exception as exc:
            _unavailable(exc)  # logs
            return
        if loaded.session is not None:
            endpoint.refresh(loaded.session)

    async def heartbeat(self, endpoint: Endpoint) -> None:
        """Postpone the store's expiry of the sessions this instance holds busy.

        A session with a call running or a GET open must not expire while it
        is quiet, here or anywhere (the in-memory rule): each is touched when
        first seen busy and then every quarter of ``session_idle_timeout``,
        not at every poll (500 busy sessions touched each second were 1,000
        script calls a second). The touches go beside the write rounds, not
        between them: a touch only postpones the expiry of keys that exist,
        so it can neither revive a session closed meanwhile nor delay an
        event. And a call whose client left this instance may be followed
        from another one: its session is read (one round trip each) and
        handed to ``Endpoint.refresh``, which restarts its grace period then.
        Failures are logged and retried at the next poll.
        """
        now = endpoint.state.clock()
        every = endpoint.config.session_idle_timeout / 4
        due: list[SessionTouched] = []
        touched: dict[str, float] = {}  # sessions no longer busy are forgotten
        for session in endpoint.sessions:
            if session.busy:
                last = touched[session.id] = self._touched.get(session.id, -math.inf)
                if now - last >= every:
                    due.append(SessionTouched(session.id, now))
        self._touched = touched
        try:
            if due:
                await self.store.apply(due)
                for change in due:  # only once stored: a failed touch is due again next poll
                    touched[change.session_id] = now
            # Calls of this instance no response here carries may be followed
            # elsewhere: read their sessions, so their grace periods know.
            away = {s.session_id for s in endpoint.state.detached_calls if s.session_id}
            for session_id in away:
                loaded = await self.store.load(StateKeys(session_id=session_id))
                if loaded.session is not None:
                    endpoint.refresh(loaded.session)
        except Exception as exc:
            _unavailable(exc)  # logs
