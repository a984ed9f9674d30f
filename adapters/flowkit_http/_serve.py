"""``flowkit serve``'s server: hypercorn's HTTP machinery under flowkit's own accept loop.

hypercorn's trio worker (``hypercorn.trio.run.worker_serve``) accepts with
``trio.serve_listeners`` and offers no hook for what flowkit must hold at the
listening socket, so :func:`serve` is that worker with its accept loop
replaced; each accepted connection is still driven by hypercorn's own
``TCPServer`` (h11/h2, keep-alive, the ASGI plumbing), which is why
``pyproject.toml`` pins hypercorn to the versions this was tested with.
What the loop adds:

* **a connection cap** (``ServeLimits.max_connections``): a connection
  beyond it is accepted, answered ``503`` with ``Retry-After`` and closed at
  once, so a client learns it was refused instead of waiting in the backlog;
* **running out of file descriptors** (``EMFILE``/``ENFILE``) degrades to
  refusing new connections the same way: one descriptor is kept in reserve,
  released to accept (and refuse) the waiting connection, then taken back.
  It is logged once per ``ServeLimits.log_interval`` with a count, never
  with a traceback (``trio.serve_listeners`` logs a traceback ten times a
  second instead and leaves the client in the backlog);
* **a hard end at the shutdown deadline**: hypercorn shields every socket
  send from cancellation, so a client that stopped reading would hold its
  connection (and the process) past ``graceful_timeout`` forever. At the
  deadline every connection still open is aborted (``SO_LINGER`` 0, then
  closed: an RST), which ends the shielded send with ``ClosedResourceError``;
* the :class:`~flowkit_http._gate.RequestGate` in front of the app (body
  timeout and budget, framing, absolute-form targets);
* fixes to hypercorn's connection handling (:class:`_TCPServer`: close
  only after the send in progress; the keep-alive timer never closes a
  connection whose request it was too late to see; :class:`_Stream`: read
  what already arrived before closing, so the kernel sends a FIN, not a
  reset that destroys an early answer).

TLS and QUIC, which ``flowkit serve`` does not offer, are not supported here.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import attrs
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol import ProtocolWrapper
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState, HTTPScope, Scope, WebsocketScope
from hypercorn.utils import parse_socket_addr, repr_socket_addr
from quart import Quart

from flowkit.mcp._headers import may_open_session, parse_head

from ._appqueue import AppTaskGroup
from ._asgi import CONNECTION_KEY, MORE, MCPApp, Message, Send
from ._gate import RequestGate
from ._idle import IdleTimers
from ._observe import ObservedApp
from ._pacing import Pacer

__all__ = ["ServeLimits", "serve"]

logger = logging.getLogger("flowkit_http")

# Accept errors that mean "no descriptor (or buffer) for a new connection".
_CAPACITY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Accept errors about one connection that died in the backlog: skip it.
_SKIPPED = frozenset(
    {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ETIMEDOUT, errno.EHOSTUNREACH}
)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 1\r\n"
    b"content-length: 24\r\nconnection: close\r\n\r\nserver at capacity: retry"
)
_RECEIVE_SIZE = 65536  # trio's default for receive_some
_DRAIN = 1024 * 1024  # bytes read and dropped at most when closing a connection
_NO_FD_WAIT = 0.1  # seconds to wait for descriptors when not even the reserve is left


@attrs.frozen
class ServeLimits:
    """What ``flowkit serve`` bounds, beyond hypercorn's own settings.

    Attributes:
        max_connections: open connections at most; more get 503 and are closed.
        body_timeout: seconds a request body may take to arrive (else 408).
        body_budget: bytes all unfinished request bodies may hold together
            (else 503 with ``Retry-After``).
        log_interval: at most one log line per this many seconds for each
            kind of refusal, with a count.
        accept_pacing: requests in their working phase (head parsed, response
            head not yet written; each counted for 20 ms at most) from which
            a new connection waits, at most 20 ms, before it is accepted;
            also the most connections' *first* requests that may be
            handshakes worked on at once (the others wait their turn, in
            arrival order; a request on a connection that served one
            before never waits, nor does a first request whose head names
            a session or a stateless call): a burst's calls go before its
            handshakes (``flowkit_http._pacing``). 0 turns pacing off.
    """

    max_connections: int = attrs.field(default=1000, validator=attrs.validators.ge(1))
    body_timeout: float = attrs.field(default=20.0, validator=attrs.validators.gt(0))
    body_budget: int = attrs.field(default=64 * 1024 * 1024, validator=attrs.validators.ge(1))
    log_interval: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    accept_pacing: int = attrs.field(default=8, validator=attrs.validators.ge(0))


class _Every:
    """One log line per interval for a repeated event, with the count since the last.

    Minimal on purpose: ``flowkit_http._logging`` (rate-limited summaries
    by reason) supersedes it.
    """

    def __init__(self, interval: float, message: str) -> None:
        self.interval = interval
        self.message = message
        self.count = 0
        self.next = -float("inf")

    def __call__(self) -> None:
        self.count += 1
        now = trio.current_time()
        if now >= self.next:
            logger.warning("%s (%d since the last report)", self.message, self.count)
            self.count = 0
            self.next = now + self.interval


def _open_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None


def _refuse(conn: socket.socket) -> None:
    """Answer 503 on a just-accepted socket and close it, never blocking."""
    with conn, contextlib.suppress(OSError):
        conn.setblocking(False)
        # Read what the request already sent: closing a socket with unread
        # data answers with a reset, which would hide the 503.
        with contextlib.suppress(BlockingIOError):
            conn.recv(65536)
        conn.send(_BUSY)


def _abort(stream: _Stream) -> None:
    """Reset a connection now: a shielded send blocked on it ends at once."""
    sock = stream.socket
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _App:
    """hypercorn's ``ASGIWrapper`` with no coroutine frame of its own.

    ``ASGIWrapper.__call__`` is ``async def`` and awaits the app, so every
    open request holds one more frame for as long as it lasts (~0.3 KiB per
    idle stream, docs/benchmarks.md); this returns the app's awaitable.
    """

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(
        self, scope: Any, receive: Any, send: Any, sync_spawn: Any, call_soon: Any
    ) -> Coroutine[Any, Any, None]:
        # Each HTTP/1 request's messages are written one socket write each
        # (_TCPServer.send_message).
        if scope["type"] == "http" and scope["http_version"] in ("1.0", "1.1"):
            stream: _Stream | None = scope["state"].get(CONNECTION_KEY)
            if stream is not None and stream.server is not None:
                send = _Send(stream.server, send)
        return cast(Coroutine[Any, Any, None], self.app(scope, receive, send))


class _Send:
    """An HTTP/1 request's ASGI ``send``, through :meth:`_TCPServer.send_message`.

    A two-slot object, not a ``functools.partial`` (~50 bytes against ~190
    with its empty keywords dict), held for as long as the request is open.
    """

    __slots__ = ("send", "server")

    def __init__(self, server: _TCPServer, send: Any) -> None:
        self.server = server
        self.send = send

    def __call__(self, message: Message) -> Coroutine[Any, Any, None]:
        return self.server.send_message(self.send, message)


_PACING_AGE = 0.02  # seconds a working request counts, and a connection waits, at most
_NO_PACING = Pacer(0, _PACING_AGE)

_FLUSH = RawData(data=b"")  # writes what a message left held


def _asgi_callable(app: Any) -> Any:
    """What to call for ``app``, with as few coroutine frames per request as it allows.

    A Quart app whose ``__call__`` is Quart's own only awaits its
    ``asgi_app``, and flowkit's fronts (``MCPApp``, ``ObservedApp``) have a
    ``dispatch`` that is their ``__call__`` without a frame: each layer
    skipped is one frame less per open stream (docs/benchmarks.md).
    """
    if isinstance(app, Quart) and type(app).__call__ is Quart.__call__:
        app = app.asgi_app
    if isinstance(app, MCPApp | ObservedApp):
        return app.dispatch
    return app


class _Stream(trio.abc.HalfCloseableStream):
    """A connection that reads what already arrived before it closes.

    Closing a socket whose receive queue holds unread bytes makes the kernel
    answer with a reset instead of a FIN, and a reset can destroy the
    response the client has not read yet: every early answer (408, 503 for
    the budget, 400 for bad framing, hypercorn's 413) is sent while the
    request's body is still unread. So before closing, the bytes already
    queued are read and dropped, without waiting (at most ``_DRAIN``).
    (A wrapper: ``trio.SocketStream`` can not be subclassed.)

    It is also the :class:`~flowkit_http._asgi.Connection` that every
    request on it finds in its ASGI ``state``: whatever ends the connection
    for hypercorn (an end of file or error on the read, a failed send, a
    close) calls ``on_close``, so an open SSE response learns that its
    client left without a task waiting for ``http.disconnect``.
    """

    def __init__(self, raw: socket.socket) -> None:
        self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(raw))
        self._raw = raw
        self.socket = self._stream.socket  # hypercorn reads the addresses off it
        self.closed = False  # the connection ended (see Connection)
        self.on_close: Callable[[], None] | None = None
        self.server: _TCPServer | None = None  # the driver writing to it
        # Bytes written while an ASGI message is being sent (or held by its
        # MORE hint): they go out together with the next write that is not.
        self.holding = False
        self.held: list[bytes] = []
        # The keep-alive timer decided to close this idle connection: what is
        # read from now on is dropped, never served, and the read reports
        # the end (see _TCPServer._idle_timeout).
        self.ending = False

    def take_held(self, data: bytes = b"") -> bytes:
        """What is held, with ``data`` after it, as one write; nothing is held after."""
        held = self.held
        held.append(data)
        joined = b"".join(held)
        held.clear()
        return joined

    def _ended(self) -> None:
        """The connection is over for hypercorn: tell the response waiting on it, once."""
        self.closed = True
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._stream.send_all(data)
        except BaseException:
            self._ended()  # hypercorn closes the connection on any failed send
            raise

    def send_now(self, data: bytes | memoryview) -> int:
        """Send what the socket takes at once, never waiting: the count sent (0: it is full).

        Raises:
            trio.BrokenResourceError: the connection is gone (reset, closed).
        """
        try:
            return self._raw.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self._ended()  # as for a failed send_all: hypercorn closes the connection
            raise trio.BrokenResourceError(str(exc)) from exc

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """``SocketStream.receive_some``, waiting with the fewest frames.

        hypercorn's reader waits here for the whole life of an idle
        connection: through ``SocketStream`` and the trio socket that is a
        stack of five coroutine frames (~3.6 KiB per open connection,
        docs/benchmarks.md). This is trio's own sequence (try, and wait for
        readable only on ``BlockingIOError``; a checkpoint either way) on
        the raw socket, with trio's errors: ``ClosedResourceError`` for a
        closed socket, ``BrokenResourceError`` for any other failure. An
        end of file, an error, a timeout or a cancel here all end the
        connection (hypercorn then sends ``http.disconnect``).
        """
        raw = self._raw
        size = max_bytes or _RECEIVE_SIZE
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            waited = False
            while True:
                try:
                    data = raw.recv(size)
                    break
                except BlockingIOError:
                    pass
                # Waited for outside the ``except``: inside it, the error, its
                # traceback and its message would live as long as the wait
                # (~0.6 KiB per idle connection).
                await trio.lowlevel.wait_readable(raw)  # a checkpoint
                waited = True
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
        except OSError as exc:
            self._ended()
            if exc.errno == errno.EBADF or raw.fileno() == -1:
                raise trio.ClosedResourceError("the connection was closed") from None
            raise trio.BrokenResourceError(str(exc)) from exc
        except BaseException:
            self._ended()
            raise
        if self.ending:
            data = b""  # read after the close was decided: dropped, unserved
        if not data:
            self._ended()
        return data

    async def aclose(self) -> None:
        self._ended()
        raw = self._raw
        with contextlib.suppress(OSError):
            drained = 0
            while drained < _DRAIN and (data := raw.recv(65536, socket.MSG_DONTWAIT)):
                drained += len(data)
        await self._stream.aclose()


class _TCPServer(TCPServer):
    """hypercorn's connection driver, with races closed and fewer writes.

    * **Closing under a response head.** hypercorn closes a connection on a
      protocol ``Closed`` event at once, while another task may hold the
      send lock with a response head not yet written: after a
      ``Connection: close`` answer sent before the request was read (the
      gate's 400/408/503), the client's next bytes are an h11 error in the
      reading task, which closed the socket under the head (the client saw
      the connection end with no response, four times in five). Taking the
      send lock first lets that head out.
    * **A write's cost.** hypercorn sends every chunk under its send lock in a
      shielded cancel scope, through ``SocketStream.send_all``: two schedule
      points, a scope, the stream's conflict detector and error translation
      per write, about a quarter of a timed event's CPU. When no other task
      holds the lock (almost always: a connection has one writer), the
      lock is taken without waiting and the bytes go straight to the socket;
      only what the socket does not take at once goes the usual way, still
      under the lock, so bytes never interleave. It stays a checkpoint, as
      trio's sends are: a cancelled writer sends nothing, and it always
      yields; as in hypercorn's shielded send, a write that started is not
      cut by a cancel.
    * **Writes per message.** What hypercorn writes for one ASGI message
      (a chunk and the terminator, a head) is one socket write, and a
      message hinted ``MORE`` goes with the next (:meth:`send_message`);
      what is held goes out before hypercorn restarts the keep-alive timer
      or closes the connection (a shutdown closes idle ones at once).
    * **The keep-alive timer's cost.** hypercorn starts a task per idle
      spell (each response's end) and cancels it at each request's head;
      here the timer is an entry on the server's one timer task
      (:mod:`flowkit_http._idle`), and only a timer that fires starts a
      task, the close (:meth:`_idle_timeout`), in the connection's group.
      A connection whose client left is not held by a timer task (hypercorn
      keeps a connection until all its tasks end); the timer is still
      stopped at the client's end of file (:meth:`_read_data`).
    * **The keep-alive timer closing a busy connection.** The idle timer
      (``keep_alive_timeout``, 5 s, also what ends a slowloris before its
      head) runs from the accept until a request's head is parsed, and is
      then stopped. But once it fired, its close runs in a shielded scope
      as soon as its task runs: when the loop is busy (thousands of streams
      opening at once), a head parsed in the moments between the deadline
      and that task's turn starts a response the timer then cuts. So the
      close checks, when it runs, whether a request is in progress
      (``_busy``, set before the timer is even stopped), and leaves such a
      connection alone. This closed 5 of 3,000 idle tool-call streams in one
      of three runs of issue 20's hold test
      (``tests/integration/reliability/test_idle_timer.py``).
    """

    _served = False  # a request was served on this connection
    _busy = False  # a request is in progress (hypercorn's protocol said "not idle")
    pacer = _NO_PACING  # the server's (set for each connection it accepts)
    # The first request's head was parsed and its app has not started: not
    # just ``not _served``, since an h2c connection starts several streams
    # (apps) before it is first idle, and only the first takes a turn.
    _first = False

    def __init__(self, *args: Any, timers: IdleTimers | None = None) -> None:
        super().__init__(*args)
        # The keep-alive timer, on the server's shared timer task (_idle.py);
        # without one (a driver built alone, in tests) it never fires.
        self.idle_task = (timers or IdleTimers(self.config.keep_alive_timeout)).timer()  # type: ignore[assignment]

    async def send_message(self, send: Send, message: Message) -> None:
        """hypercorn's ASGI ``send`` of ``message``, its bytes in one socket write.

        hypercorn writes a response's head, each body chunk and the chunked
        terminator as separate writes; a final body is two (the chunk, the
        terminator), a JSON answer three. On loopback every write that wakes
        the peer costs tens of microseconds in the kernel, more than the
        Python around it (docs/benchmarks.md). So what hypercorn writes while
        one message is sent is held and written once at its end; a message
        carrying the :data:`~flowkit_http._asgi.MORE` hint (its app sends the
        next one at once: a head and its first event, a last event and the
        end) leaves its bytes held for the next message. Nothing is held
        across a wait of the app's: only from one ``send`` to the next.
        """
        if message["type"] == "http.response.start":
            self.pacer.end(self)  # its working phase is over (flowkit_http._pacing)
        stream = cast(_Stream, self.stream)
        stream.holding = True
        try:
            await send(message)
        finally:
            stream.holding = False
        if not message.get(MORE) and stream.held:
            await self.protocol_send(_FLUSH)

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            stream = cast(_Stream, self.stream)
            if stream.holding:
                stream.held.append(event.data)
                return  # written at the end of the message being sent
            await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled writer sends nothing
            data = event.data
            if stream.held:
                data = stream.take_held(data)
                event = RawData(data=data)
            if not data:
                await trio.lowlevel.cancel_shielded_checkpoint()  # nothing to write
                return
            lock = self.send_lock
            try:
                lock.acquire_nowait()
            except trio.WouldBlock:  # another write is under way: queue behind it
                await super().protocol_send(event)
                return
            try:
                await self._send_raw(data)
            finally:
                lock.release()
            await trio.lowlevel.cancel_shielded_checkpoint()  # a send yields, lock released
        elif isinstance(event, Closed):
            self.pacer.end(self)
            async with self.send_lock:
                await self._flush_held()
                await self._close()
            await self.protocol.handle(Closed())
        else:
            if isinstance(event, Updated):
                self._busy = not event.idle  # before stopping the timer can yield
                if event.idle:
                    self.pacer.end(self)
                    self._served = True
                    self._first = False
                elif self._served:
                    self.pacer.begin(self)
                else:
                    self._first = True  # its turn is taken in _before_app, from its headers
            if cast(_Stream, self.stream).held:
                # The response ended (hypercorn recycles the connection next):
                # its bytes go before the keep-alive timer restarts, which may
                # close the connection at once (a shutdown) without a write.
                async with self.send_lock:
                    await self._flush_held()
            await super().protocol_send(event)

    async def _flush_held(self) -> None:
        """Write what is held now, the send lock held: before a close, or before
        the keep-alive timer restarts (which may close the connection at once)."""
        stream = cast(_Stream, self.stream)
        if stream.held and not stream.closed:
            await self._send_raw(stream.take_held())

    async def _send_raw(self, data: bytes) -> None:
        """``data`` on the socket, the send lock held: at once, or the rest the usual way."""
        stream = cast(_Stream, self.stream)
        try:
            sent = stream.send_now(data)
            if sent < len(data):
                with trio.CancelScope(shield=True):
                    await stream.send_all(memoryview(data)[sent:])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self.protocol.handle(Closed())

    async def _before_app(self, scope: Scope) -> None:
        """A connection's first request, its headers parsed: its turn in the line.

        Only a request that may be a handshake waits (``may_open_session``:
        no ``Mcp-Session-Id``, no ``Mcp-Method`` but ``initialize``). A call
        is what the line makes room for, so it begins working at once: a
        2026-07-28 client's every call is the first request of a connection
        (``flowkit_http._pacing``). Taken in the connection's reader, before
        the app starts, where hypercorn's h11 parse already left the headers.
        """
        if not self._first:
            return
        self._first = False
        # An HTTP request, or a WebSocket upgrade (no method: it is a GET).
        request = cast(HTTPScope | WebsocketScope, scope)
        method = request["method"] if request["type"] == "http" else "GET"
        if may_open_session(parse_head(method, request["headers"])):
            await self.pacer.first(self)
        else:
            self.pacer.begin(self)

    async def run(self) -> None:
        """hypercorn's ``TCPServer.run`` (0.18) for plain TCP, with :class:`AppTaskGroup`.

        The same steps (this server never does TLS: :func:`serve` refuses
        it), only each request's ASGI queue is a flowkit channel
        (``_appqueue``: ~1 KiB less per open stream).
        """
        raw = self.stream.socket
        try:
            client = parse_socket_addr(raw.family, raw.getpeername())
            server = parse_socket_addr(raw.family, raw.getsockname())
            async with AppTaskGroup(self._before_app) as task_group:
                self._task_group = task_group
                self.protocol = ProtocolWrapper(
                    self.app,
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState(self.state),
                    False,  # no TLS
                    client,
                    server,
                    self.protocol_send,
                    "http/1.1",
                )
                await self.protocol.initiate()
                await self.idle_task.restart(task_group, self._idle_timeout)
                await self._read_data()
        except OSError:
            pass
        finally:
            await self._close()

    async def _read_data(self) -> None:
        """hypercorn's read loop, with no cancel scope per read and no chunk held.

        hypercorn's own (``TCPServer._read_data``, 0.18) wraps every read in
        ``trio.fail_after(read_timeout or inf)``, a cancel scope with its
        cancel status (two sets: ~0.9 KiB) for as long as the read waits,
        and keeps the last chunk read in a local across the next wait (the
        request that opened a stream, ~0.6 KiB): both per open connection,
        for its whole idle life (docs/benchmarks.md, "Where an idle stream's
        bytes go"). This is the same loop with the same events (``RawData``
        per chunk, ``Closed`` at the end, the same errors ending it), a
        deadline only when ``read_timeout`` is set, and the chunk dropped
        once handed over.
        """
        timeout = self.config.read_timeout
        stream = cast(_Stream, self.stream)
        while True:
            try:
                if timeout:
                    with trio.fail_after(timeout):
                        data = await stream.receive_some(_RECEIVE_SIZE)
                else:
                    data = await stream.receive_some(_RECEIVE_SIZE)
            except (trio.ClosedResourceError, trio.BrokenResourceError, trio.TooSlowError):
                break
            chunk = bytes(data)
            await self.protocol.handle(RawData(chunk))
            if not data:
                break
            del data, chunk  # not held while the next read waits
        await self.protocol.handle(Closed())
        # The client left (or the read failed): a response ended just before
        # the client's close restarted the timer (the connection is recycled
        # before the end of file is read); it must not fire on a closed
        # connection, nor hold it until the deadline.
        await self.idle_task.stop()

    async def _initiate_server_close(self) -> None:
        # hypercorn closes the socket here without the send lock: what a
        # message left held goes first (as in the Closed branch above).
        async with self.send_lock:
            await self._flush_held()
        await super()._initiate_server_close()

    async def _idle_timeout(self) -> None:
        """The keep-alive timer fired (the connection was idle for ``keep_alive_timeout``)."""
        if self._busy:
            return  # a request's head arrived as the timer fired: not idle
        # Decided, with no checkpoint since the check: from here a request
        # read (even one already read, in the reader's hands at its
        # checkpoint) is dropped, not served. Otherwise a request read while
        # the close below waits for the send lock started its call on a
        # connection about to close: its client saw the close with no byte
        # of answer, and a retry found the request id in flight.
        cast(_Stream, self.stream).ending = True
        with trio.CancelScope(shield=True):
            await self._initiate_server_close()


class _Server:
    """The accept loops and the live connections of one :func:`serve`."""

    def __init__(self, app: Any, config: Config, state: dict[str, Any], limits: ServeLimits):
        self.app = app
        self.config = config
        self.context = WorkerContext(None)
        self.state = state
        self.limits = limits
        self.live: set[_Stream] = set()
        self.reserve = _open_reserve()
        self.over_cap = _Every(limits.log_interval, "connection refused: at max_connections")
        self.no_fds = _Every(limits.log_interval, "connection refused: out of file descriptors")
        self.pacer = Pacer(limits.accept_pacing, _PACING_AGE)
        self.idle = IdleTimers(config.keep_alive_timeout)

    async def accept(self, listener: socket.socket, nursery: trio.Nursery) -> None:
        while True:
            await trio.lowlevel.wait_readable(listener)
            await self.pacer.room()  # the connection waits in the backlog meanwhile
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno in _SKIPPED:
                    continue
                if exc.errno not in _CAPACITY:
                    raise
                await self._out_of_descriptors(listener, exc.errno)
                continue
            if len(self.live) >= self.limits.max_connections:
                self.over_cap()
                _refuse(conn)
                continue
            stream = _Stream(conn)
            self.live.add(stream)
            nursery.start_soon(self._connection, stream)

    async def _out_of_descriptors(self, listener: socket.socket, code: int) -> None:
        """Refuse the waiting connection with the reserve descriptor, or wait a moment.

        The wait is for when the reserve can not help (no memory or buffers,
        or another thread took the descriptor): accepting again at once
        would spin.
        """
        self.no_fds()
        if code in (errno.EMFILE, errno.ENFILE) and self.reserve is not None:
            os.close(self.reserve)
            self.reserve = None
            refused = False
            try:
                conn, _ = listener.accept()
            except OSError:
                pass  # gone, or another thread took the descriptor first
            else:
                _refuse(conn)  # closes it: the descriptor is free again
                refused = True
            self.reserve = _open_reserve()
            if refused and self.reserve is not None:
                return
        await trio.sleep(_NO_FD_WAIT)
        if self.reserve is None:
            self.reserve = _open_reserve()

    async def _connection(self, stream: _Stream) -> None:
        try:
            # Every request on it sees the connection (MCPApp watches it for
            # the client leaving instead of a task per response).
            state = ConnectionState({**self.state, CONNECTION_KEY: stream})
            server = _TCPServer(
                self.app, self.config, self.context, state, stream, timers=self.idle
            )
            stream.server = server
            server.pacer = self.pacer
            await server.run()
        finally:
            stream.server = None
            self.live.discard(stream)

    async def abort_at(self, deadline: float) -> None:
        await trio.sleep_until(deadline)
        if self.live:
            logger.warning(
                "shutdown: aborting %d connection(s) still open at the graceful deadline",
                len(self.live),
            )
        for stream in list(self.live):
            _abort(stream)

    def close(self) -> None:
        if self.reserve is not None:
            os.close(self.reserve)
            self.reserve = None


async def serve(
    app: Any,
    config: Config,
    *,
    limits: ServeLimits | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI ``app`` with hypercorn's protocol code and flowkit's limits.

    Like ``hypercorn.trio.serve``: ``task_status.started`` gets the bound
    URLs; a graceful shutdown starts when ``shutdown_trigger()`` returns (no
    new connections; open ones get ``config.graceful_timeout`` seconds) and
    the connections left at that deadline are aborted.
    """
    limits = limits if limits is not None else ServeLimits()
    if config.ssl_enabled:
        raise ValueError("flowkit_http._serve.serve does not serve TLS; use hypercorn directly")
    gate = RequestGate(
        _asgi_callable(app), body_timeout=limits.body_timeout, body_budget=limits.body_budget
    )
    # hypercorn types ASGI callables with its TypedDicts, ours are plain
    # mappings: same protocol, cast at the seam (as _quart.mount does).
    wrapped = _App(gate.dispatch)  # the gate without a frame of its own per request
    config.set_statsd_logger_class(StatsdLogger)
    state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, state)
    server = _Server(wrapped, config, state, limits)
    try:
        async with trio.open_nursery() as lifespan_nursery:
            await lifespan_nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            lifespan_nursery.start_soon(server.idle.serve)
            listeners = config.create_sockets().insecure_sockets
            try:
                for sock in listeners:
                    sock.listen(config.backlog)
                    sock.setblocking(False)
                binds = [f"http://{repr_socket_addr(s.family, s.getsockname())}" for s in listeners]
                async with trio.open_nursery() as connections:
                    async with trio.open_nursery() as accepting:
                        for sock in listeners:
                            accepting.start_soon(server.accept, sock, connections)
                        task_status.started(binds)
                        if shutdown_trigger is None:
                            await trio.sleep_forever()
                        await shutdown_trigger()
                        accepting.cancel_scope.cancel()
                    for sock in listeners:
                        trio.lowlevel.notify_closing(sock)
                        sock.close()
                    await server.context.terminated.set()
                    server.idle.terminate()  # idle keep-alives close now
                    deadline = trio.current_time() + config.graceful_timeout
                    connections.cancel_scope.deadline = deadline
                    lifespan_nursery.start_soon(server.abort_at, deadline)
            finally:
                for sock in listeners:
                    sock.close()
            await lifespan.wait_for_shutdown()
            lifespan_nursery.cancel_scope.cancel()
    finally:
        server.close()
