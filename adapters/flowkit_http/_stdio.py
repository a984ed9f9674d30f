"""MCP over standard input and output: the same core, one line per message.

``flowkit serve --stdio`` runs an :class:`~flowkit_http.MCPServer` as the
subprocess of a local client (Claude Desktop, an IDE, the Inspector). The
protocol is the sans-IO core's (:meth:`flowkit.mcp.Endpoint.receive_message`
with the ``"stdio"`` binding: no header layer, line framing, cancellation by
``notifications/cancelled`` in both eras); the tools run in the same runner
with the same per-call outboxes as over HTTP. What this module adds is the
one thing stdio has that HTTP does not: **every call shares one pipe**.

* **stdout is the protocol's alone.** The real stdout is duplicated to a
  private descriptor for protocol bytes, then descriptor 1 and
  ``sys.stdout`` are pointed at stderr, so a ``print()`` in a tool (or a C
  library writing to fd 1) lands in the log, never in the stream.
* **Fair writing.** One writer task owns the pipe. Each call's outbox is
  drained by a small pump that hands the writer one batch at a time and waits
  until it is written, so a call never has more than its outbox plus one
  batch in memory, and the writer takes the calls' batches round-robin: a
  lossless tool whose outbox is full waits for *its* turn and holds up
  nobody else. Replies and the batches of calls that have finished (their
  final responses) go first: they free a call and answer a waiting client.
* **Backpressure.** When the client reads stdout slowly, the writer's
  ``send_all`` waits on the pipe, the pumps wait on the writer, and the
  outboxes apply the tool's policy exactly as for a slow HTTP client
  (lossless: the pipeline waits; conflate: latest progress, oldest logs
  dropped with a count). Reading stdin pauses while too many replies wait.
* **Lines are bounded.** A line longer than ``config.max_body_size`` (4 MiB
  by default) is refused with the core's error and skipped up to its
  newline; at most that many bytes (plus one read) are held.
* **Lifecycle.** EOF on stdin (the client's shutdown signal) or SIGTERM /
  SIGINT cancels the calls in flight, writes the replies already made
  (for at most ``_DRAIN_SECONDS``), and returns; the process exits 0. A
  client that closes our stdout ends the server the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Iterator

import trio
from trio.lowlevel import ParkingLot

from flowkit.mcp import (
    Answer,
    Cancel,
    Connection,
    Endpoint,
    Invoke,
    OpenListenStream,
    OutgoingStream,
    Reply,
    StartCall,
    ToolContext,
)

from ._asker import LiveAsker
from ._invoke import run_invoke
from ._logformat import correlate
from ._outbox import Outbox, open_outbox
from ._runner import run_call
from ._server import MCPServer, StreamSettings

__all__ = ["StdioServer", "run_stdio", "serve_stdio"]

logger = logging.getLogger("flowkit_http")

_READ_SIZE = 64 * 1024  # bytes per read from stdin
_WRITE_SIZE = 64 * 1024  # a write gathers batches up to about this much
_MAX_REPLIES = 64  # replies waiting for the pipe before stdin is read no further
_DRAIN_SECONDS = 2.0  # at shutdown, how long queued replies may take to go out
_LISTEN_QUEUE = 16  # notifications waiting for one subscriptions/listen stream


class _Batch:
    """Bytes waiting for the pipe, the stream they belong to, and who waits."""

    __slots__ = ("data", "stream", "written")

    def __init__(self, data: bytes, stream: OutgoingStream | None) -> None:
        self.data = data
        self.stream = stream
        self.written = trio.Event()


class _Pipe:
    """The one stdout all calls share: finals first, then the calls round-robin.

    ``urgent`` holds replies and the batches of finished calls; ``ready``
    holds at most one batch per running call (its pump waits for it to be
    written), so taking ``ready`` in order *is* round-robin.
    """

    def __init__(self, out: trio.abc.SendStream) -> None:
        self._out = out
        self._urgent: deque[_Batch] = deque()
        self._ready: deque[_Batch] = deque()
        self._work = ParkingLot()  # the writer waits here for batches
        self._room = ParkingLot()  # reply producers wait here for room
        self._emptied = ParkingLot()  # drain() waits here
        self.broken = False  # the pipe failed: nothing more will be written
        self._writing = False  # a write is under way
        self.written = 0  # bytes written

    @property
    def idle(self) -> bool:
        """Nothing waits to be written."""
        return not (self._urgent or self._ready)

    async def put(self, data: bytes, stream: OutgoingStream, *, urgent: bool) -> None:
        """Queue a call's batch and wait until it is written (or dropped: cancelled)."""
        batch = _Batch(data, stream)
        (self._urgent if urgent else self._ready).append(batch)
        self._work.unpark()
        await batch.written.wait()

    async def reply(self, data: bytes) -> None:
        """Queue a reply; waits only while too many replies wait already."""
        while len(self._urgent) >= _MAX_REPLIES:
            await self._room.park()
        self._urgent.append(_Batch(data, None))
        self._work.unpark()

    async def run(self) -> None:
        """Write forever; ends only by cancellation or a closed pipe (raises)."""
        try:
            while True:
                while self.idle:
                    self._emptied.unpark_all()
                    await self._work.park()
                batches = self._take()
                data = b"".join(batch.data for batch in batches)
                self._writing = True
                try:
                    if data:
                        await self._out.send_all(data)
                        self.written += len(data)
                finally:
                    self._writing = False
                    for batch in batches:
                        batch.written.set()
                    self._room.unpark_all()
        except BaseException:
            self.broken = True
            self._emptied.unpark_all()
            raise

    def _take(self) -> list[_Batch]:
        """The next write: every urgent batch, then running calls' in turn."""
        taken: list[_Batch] = []
        size = 0
        for queue in (self._urgent, self._ready):
            while queue and (size < _WRITE_SIZE or not taken):
                batch = queue.popleft()
                if batch.stream is not None and batch.stream.cancelled:
                    batch.written.set()  # "MUST NOT send any further messages for it"
                    continue
                taken.append(batch)
                size += len(batch.data)
        return taken

    async def drain(self) -> None:
        """Return once everything queued is written, or the writer has died."""
        while not (self.idle and not self._writing) and not self.broken:
            await self._emptied.park()


class _Call:
    """A running tool call: its outbox and the scope that cancels it."""

    __slots__ = ("asker", "outbox", "scope", "stream")

    def __init__(self, stream: OutgoingStream, outbox: Outbox) -> None:
        self.stream = stream
        self.outbox = outbox
        self.scope = trio.CancelScope()
        self.asker: LiveAsker | None = None  # a handshake-era call that may ask its client


class StdioServer:
    """One MCP peer on a pair of byte streams, newline-delimited.

    Args:
        target: the tools and configuration (or a ready
            :class:`~flowkit.mcp.Endpoint`).
        settings: per-call outbox bounds; defaults to the server's.
    """

    def __init__(self, target: MCPServer | Endpoint, settings: StreamSettings | None = None):
        if isinstance(target, MCPServer):
            # Not target.endpoint(): one peer in one process has nothing to
            # share with other instances (MCPServer.shared) or to resume (an
            # event store), so the endpoint is a plain local one.
            self.endpoint = Endpoint(
                target.config,
                target.tools,
                resources=target.resources,
                prompts=target.prompts,
                clock=trio.current_time,
            )
            self.settings = settings if settings is not None else target.settings
            self._live = tuple(target.live_resources)
        else:
            self.endpoint = target
            self.settings = settings if settings is not None else StreamSettings()
            self._live = ()
        self.connection: Connection = self.endpoint.open_connection()
        self._calls: dict[OutgoingStream, _Call] = {}
        self._listeners: dict[OutgoingStream, trio.MemorySendChannel[bytes]] = {}
        self._nursery: trio.Nursery | None = None
        self._pipe: _Pipe | None = None

    async def serve(self, stdin: trio.abc.ReceiveStream, stdout: trio.abc.SendStream) -> None:
        """Serve until EOF on ``stdin``, cancellation, or ``stdout`` closing."""
        pipe = self._pipe = _Pipe(stdout)
        endpoint = self.endpoint
        removers = (  # listening only while serving: a dropped server leaves none (issue 12)
            endpoint.tools.on_change(lambda: self._notify(endpoint.list_changed("tools"))),
            endpoint.resources.on_change(lambda: self._notify(endpoint.list_changed("resources"))),
            endpoint.prompts.on_change(lambda: self._notify(endpoint.list_changed("prompts"))),
            endpoint.resources.on_update(lambda uri: self._notify(endpoint.resource_updated(uri))),
        )
        try:
            async with trio.open_nursery() as writer:
                writer.start_soon(pipe.run)
                for live in self._live:  # the streaming-native resources, for as long as we serve
                    writer.start_soon(live.run, self.endpoint.resources.updated)
                try:
                    async with trio.open_nursery() as calls:
                        self._nursery = calls
                        try:
                            await self._read(stdin)
                        finally:
                            self._end_calls()
                finally:
                    # Replies already made go out, unless the client stopped reading.
                    with trio.move_on_after(_DRAIN_SECONDS) as drain:
                        drain.shield = True
                        await pipe.drain()
                    writer.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            logger.info("stdout closed by the client: shutting down")
        finally:
            self._nursery = None
            for remove in removers:
                remove()

    def _end_calls(self) -> None:
        """Shutdown: cancel every call; nothing more is written for them."""
        session_id = self.connection.session_id
        if session_id is not None:
            self.endpoint.close_session(session_id)  # marks its streams cancelled
        for call in list(self._calls.values()):
            call.stream.cancel()
            call.scope.cancel()
            call.outbox.abort()
        for stream, queue in list(self._listeners.items()):
            stream.cancel()
            queue.close()

    # -- reading ------------------------------------------------------------------

    async def _read(self, stdin: trio.abc.ReceiveStream) -> None:
        limit = self.endpoint.config.max_body_size
        line = bytearray()
        overflow = False  # the current line passed the limit: skip to its end
        while True:
            chunk = await stdin.receive_some(_READ_SIZE)
            if not chunk:
                if line.strip():
                    await self._message(bytes(line))  # a last line without its newline
                return
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start:end]
                if not overflow:
                    line += piece[: limit + 1 - len(line)]
                    overflow = len(line) > limit
                if end < 0:
                    break
                if line.strip():
                    # Cut at limit + 1 bytes: the core refuses it as too large.
                    await self._message(bytes(line))
                line.clear()
                overflow = False
                start = end + 1

    async def _message(self, data: bytes) -> None:
        action = self.endpoint.receive_message(data, self.connection)
        assert self._pipe is not None
        if isinstance(action, Reply):
            listen = self.connection.listen
            if listen is not None and not listen.finished and listen not in self._listeners:
                await self._listen(listen)  # initialize bound the session's notifications
            for stream in action.cancelled:
                self._cancel(stream)
            if action.error is not None and action.error.http_status >= 500:
                logger.warning("MCP request refused: %s", action.error)
            if action.body:
                await self._pipe.reply(action.body + b"\n")
        elif isinstance(action, StartCall):
            self._start(action)
        elif isinstance(action, Invoke):
            # User code (a resource reader, a prompt): in its own task, so a
            # slow one does not stop this loop reading the next lines.
            assert self._nursery is not None
            self._nursery.start_soon(self._invoke, action)
        elif isinstance(action, Cancel):
            self._cancel(action.stream)
        elif isinstance(action, Answer):  # the client answered a tool's request
            answered = self._calls.get(action.stream)
            if answered is not None and answered.asker is not None:
                answered.asker.deliver(action)
        elif isinstance(action, OpenListenStream):
            await self._listen(action.stream)
        # Resume never comes: nothing is resumable on one channel.

    async def _invoke(self, action: Invoke) -> None:
        reply = await run_invoke(action)
        assert self._pipe is not None
        if reply.body:
            await self._pipe.reply(reply.body + b"\n")

    # -- calls --------------------------------------------------------------------

    def _start(self, action: StartCall) -> None:
        assert self._nursery is not None
        settings = self.settings
        outbox = open_outbox(
            action.tool.policy,
            max_events=settings.max_queued_events,
            max_logs=settings.max_queued_logs,
        )
        call = _Call(action.stream, outbox)
        self._calls[action.stream] = call
        action.stream.open()  # nothing to write: no headers, no priming on stdio
        self._nursery.start_soon(self._call, action, call, name=f"tool {action.tool.name}")

    async def _call(self, action: StartCall, call: _Call) -> None:
        stream, outbox = call.stream, call.outbox
        correlate(action.session_id, action.request_id)  # this call's log lines
        try:
            with call.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, call)
                    try:
                        await run_call(
                            stream,
                            action.tool.fn,
                            action.arguments,
                            outbox,
                            context=self._context(action, call),
                        )
                    except Exception:
                        logger.exception("tool %r crashed the runner", action.tool.name)
                        # The core answers the request with its error.
                        await outbox.finish(stream.abort())
        finally:
            if not stream.finished:
                stream.abort()  # shutdown: nothing more is owed
            outbox.abort()
            del self._calls[stream]

    def _context(self, action: StartCall, call: _Call) -> ToolContext | None:
        """The tool's context: it asks on this channel (handshake era) or replays."""
        if action.tool.context_param is None:
            return None
        if action.replay is None:
            timeout = self.endpoint.config.ask_timeout
            call.asker = LiveAsker(self.endpoint, call.stream, call.outbox, timeout)
        return action.context(call.asker, call.asker.notify if call.asker else None)

    async def _pump(self, call: _Call) -> None:
        """Hand the call's events to the pipe, one batch at a time."""
        assert self._pipe is not None
        outbox, stream = call.outbox, call.stream
        while True:
            try:
                events = await outbox.receive_some()
            except trio.EndOfChannel:
                return
            if events:
                data = events[0] if len(events) == 1 else b"".join(events)
                await self._pipe.put(data, stream, urgent=stream.finished)

    def _cancel(self, stream: OutgoingStream) -> None:
        call = self._calls.get(stream)
        if call is not None:
            call.scope.cancel()
            call.outbox.abort()
        queue = self._listeners.pop(stream, None)
        if queue is not None:
            queue.close()

    # -- subscriptions/listen (stateless era) --------------------------------------

    async def _listen(self, stream: OutgoingStream) -> None:
        assert self._nursery is not None
        assert self._pipe is not None
        first = stream.open()[2]  # the acknowledgement
        send, receive = trio.open_memory_channel[bytes](_LISTEN_QUEUE)
        self._listeners[stream] = send
        self._nursery.start_soon(self._forward, stream, receive)
        if first:
            await self._pipe.reply(first)  # urgent: ahead of any notification

    async def _forward(
        self, stream: OutgoingStream, queue: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        assert self._pipe is not None
        async for data in queue:
            await self._pipe.put(data, stream, urgent=False)

    def _notify(self, events: tuple[tuple[OutgoingStream, bytes], ...]) -> None:
        """Queue the core's notifications (list changes, resource updates) for the channel."""
        for stream, data in events:
            queue = self._listeners.get(stream)
            if queue is not None:
                with contextlib.suppress(trio.WouldBlock):
                    queue.send_nowait(data)


@contextlib.contextmanager
def _protocol_stdout() -> Iterator[int]:
    """A private descriptor on the real stdout; fd 1 and ``sys.stdout`` go to stderr.

    Restored on exit, so embedding (and tests) see their streams again.
    """
    sys.stdout.flush()
    out = os.dup(1)
    saved = os.dup(1)
    saved_stdout = sys.stdout
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield out
    finally:
        sys.stdout.flush()
        sys.stdout = saved_stdout
        os.dup2(saved, 1)
        os.close(saved)


async def serve_stdio(target: MCPServer | Endpoint) -> None:
    """Serve ``target`` on this process's stdin and stdout until EOF or a signal.

    SIGTERM and SIGINT are a graceful end, as EOF is: calls are cancelled,
    replies already made are written, and this returns.
    """
    server = StdioServer(target)
    with (
        trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
        _protocol_stdout() as out,
    ):
        # trio.lowlevel.FdStream is POSIX-only: looked up here, so that
        # importing the CLI works everywhere.
        stdin = trio.lowlevel.FdStream(os.dup(0))
        stdout = trio.lowlevel.FdStream(out)
        async with stdin, stdout, trio.open_nursery() as nursery:

            async def on_signal() -> None:
                async for signum in signals:
                    logger.info("%s: shutting down", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()

            nursery.start_soon(on_signal)
            logger.info("flowkit: serving MCP on stdio")
            await server.serve(stdin, stdout)
            nursery.cancel_scope.cancel()


def run_stdio(target: MCPServer | Endpoint) -> int:
    """``flowkit serve --stdio``: serve on stdin/stdout; the exit status (0)."""
    trio.run(serve_stdio, target)
    return 0
