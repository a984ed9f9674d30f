"""stdio for the client: a server subprocess, one JSON-RPC message per line each way.

The client launches the server (``flowkit serve --stdio --demo``, or any MCP
server's command), writes requests to its stdin and reads its stdout. Every
message shares the one pipe, so :class:`StdioTransport` runs two tasks in the
client's nursery:

* **the reader** splits stdout into lines (64 KiB reads; a line longer than
  ``max_line`` bytes fails the connection without being held whole) and
  *routes* each message: a response to the exchange that sent its id, a
  ``notifications/progress`` to the exchange whose id is its
  ``progressToken`` (the client uses a call's id as its token), any other
  notification to every exchange in flight (stdio ties logs, and so partial
  results, to no request: with one call in flight they are that call's), and
  the server's own requests, and notifications while nothing is in flight, to
  the listener the client keeps open to answer them. Each route is a bounded
  memory channel: a caller that reads slowly stops the reader, the pipe
  fills, and the server's backpressure takes over (see ``docs/stdio.md``).
* **the writer** owns stdin: exchanges queue whole lines to it (a bounded
  channel, cancel-atomic), so a caller cancelled while the pipe is full never
  leaves half a line on it.

A server that exits, or closes its stdout, fails every exchange in flight and
every later one with :class:`~flowkit_client.TransportError` naming the exit
status: nothing waits forever. Closing the transport is the spec's shutdown:
close stdin, wait, then SIGTERM, then SIGKILL, each by the child's PID. The
child runs in a session of its own, so a Ctrl-C at the terminal reaches the
client, which cancels its calls and stops the server in that order.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import IO

import trio

from flowkit.mcp import Message, RemoteProtocolError, Request, Response, parse_message

from ._exceptions import ClientError, ConnectError, ProtocolError, TransportError

__all__ = ["MAX_LINE", "StdioTransport"]

MAX_LINE = 32 * 1024 * 1024  # bytes of one line from the server (a large tool result fits)
_READ_SIZE = 64 * 1024
_ROUTE_BUFFER = 64  # messages read ahead of one exchange's reader
_LISTEN_BUFFER = 16  # server requests and stray notifications waiting for the listener
_WRITE_QUEUE = 16  # lines waiting for the server's stdin
_GRACE = 2.0  # seconds for each step of the shutdown (EOF, then SIGTERM)


def _exit_text(status: int | None) -> str:
    if status is None:
        return "the server closed its stdout"
    if status < 0:
        return f"the server process was killed by signal {-status}"
    return f"the server process exited with status {status}"


class _Route:
    """One exchange's messages on the shared stdout (a :class:`~._wire.Reply`)."""

    session_id = None
    last_event_id = None
    retry_ms = None

    def __init__(self, transport: StdioTransport, receive: trio.MemoryReceiveChannel[Message]):
        self._transport = transport
        self._receive = receive
        self._done = False

    async def next_message(self) -> Message | None:
        if self._done:
            return None
        try:
            message = await self._receive.receive()
        except trio.EndOfChannel:
            self._done = True
            self._transport.raise_failure()
            return None
        self._done = isinstance(message, Response)
        return message


class StdioTransport:
    """A server subprocess reached over its stdin and stdout.

    Args:
        command: the program and its arguments.
        env: variables added to this process's environment for the server.
        cwd: the server's working directory.
        stderr: where the server's stderr goes (default: ours; a file, or
            ``subprocess.DEVNULL``).
        max_line: the longest line accepted from the server, in bytes.
    """

    header_layer = False
    closing_cancels = False
    always_listen = True

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stderr: int | IO[bytes] | None = None,
        max_line: int = MAX_LINE,
    ) -> None:
        if not command:
            raise ValueError("the server command is empty")
        self.command = list(command)
        self._env = None if env is None else {**os.environ, **env}
        self._cwd = cwd
        self._stderr = stderr
        self._max_line = max_line
        self.process: trio.Process | None = None
        self._routes: dict[int, trio.MemorySendChannel[Message]] = {}
        self._listen_send, self._listen_receive = trio.open_memory_channel[Message](_LISTEN_BUFFER)
        self._listening = False
        self._out_send, self._out_receive = trio.open_memory_channel[bytes](_WRITE_QUEUE)
        self._failure: tuple[type[ClientError], str] | None = None

    # -- start and stop -------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        """Launch the server and its reader and writer tasks in ``nursery``.

        Raises:
            ConnectError: the command cannot be run (not found, not executable).
        """
        try:
            self.process = await trio.lowlevel.open_process(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
            )
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise ConnectError(f"cannot start {shlex.join(self.command)}: {why}") from None
        nursery.start_soon(self._read, name=f"flowkit_client stdio reader {self.process.pid}")
        nursery.start_soon(self._write, name=f"flowkit_client stdio writer {self.process.pid}")

    async def aclose(self) -> None:
        """Close the server's stdin, then wait, SIGTERM, SIGKILL (each by its PID)."""
        process = self.process
        if process is None:
            return
        self._out_send.close()  # the writer sends what is queued, then closes stdin
        for stop in (None, process.terminate, process.kill):
            if process.returncode is not None:
                break
            if stop is not None:
                stop()
            with trio.move_on_after(_GRACE if stop is not process.kill else 30):
                await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()

    # -- exchanges --------------------------------------------------------------------

    def ended_because(self) -> str | None:
        """Why the connection ended (the server's exit status, ...), or ``None``."""
        return None if self._failure is None else self._failure[1]

    def raise_failure(self) -> None:
        """Raise why the connection ended, if it did."""
        if self._failure is not None:
            cls, text = self._failure
            raise cls(text)

    @asynccontextmanager
    async def open(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        session: bool = False,
        request_id: int | None = None,
    ) -> AsyncIterator[_Route | None]:
        """Write ``body`` as a line; yield the route of its response if ``request_id``.

        ``GET`` yields the listener's route (the server's requests and stray
        notifications), once; ``DELETE`` is a no-op (stdio has no sessions).
        """
        self.raise_failure()
        if method == "GET":
            if self._listening:
                raise RuntimeError("the stdio listener is open already")
            self._listening = True
            async with self._listen_receive:
                yield _Route(self, self._listen_receive)
            return
        if body is None:
            yield None
            return
        if request_id is None:
            await self._send(body)
            yield None
            return
        send, receive = trio.open_memory_channel[Message](_ROUTE_BUFFER)
        self._routes[request_id] = send  # before the write: the answer may come at once
        try:
            async with receive:
                await self._send(body)
                yield _Route(self, receive)
        finally:
            if self._routes.get(request_id) is send:
                del self._routes[request_id]
            send.close()

    async def _send(self, body: bytes) -> None:
        try:
            await self._out_send.send(body + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.raise_failure()
            raise TransportError("the server's stdin is closed") from None

    # -- the two tasks ----------------------------------------------------------------

    async def _write(self) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        stdin = self.process.stdin
        try:
            async with self._out_receive:
                async for line in self._out_receive:
                    await stdin.send_all(line)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the server is gone: the reader says why, at its EOF
        finally:
            # EOF: the spec's shutdown signal; also after a failed write.
            await stdin.aclose()

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        stdout = self.process.stdout
        tail = b""
        try:
            while chunk := await stdout.receive_some(_READ_SIZE):
                *lines, tail = (tail + chunk).split(b"\n")
                for line in lines:
                    if len(line) > self._max_line:
                        raise ProtocolError(self._too_long())
                    if line.strip():
                        await self._route(self._parse(line))
                if len(tail) > self._max_line:
                    raise ProtocolError(self._too_long())
            with trio.move_on_after(_GRACE):
                await self.process.wait()
            self._fail(TransportError, _exit_text(self.process.returncode))
        except ProtocolError as exc:
            self._fail(ProtocolError, str(exc))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._fail(TransportError, "the server's stdout was closed")

    def _too_long(self) -> str:
        return f"the server wrote a line longer than {self._max_line} bytes"

    @staticmethod
    def _parse(line: bytes) -> Message:
        try:
            return parse_message(line)
        except RemoteProtocolError as exc:
            shown = line[:80].decode("utf-8", "replace")
            raise ProtocolError(
                f"the server wrote a line that is not JSON-RPC ({exc}): {shown!r}"
            ) from None

    async def _route(self, message: Message) -> None:
        if isinstance(message, Response):
            route = self._routes.pop(message.id, None) if isinstance(message.id, int) else None
            targets = [] if route is None else [route]  # else a late answer: nobody waits
        elif isinstance(message, Request):
            targets = [self._listen_send]
        elif message.method == "notifications/progress":
            token = message.params.get("progressToken")
            route = self._routes.get(token) if isinstance(token, int) else None
            targets = [] if route is None else [route]  # else its call is over
        else:
            targets = list(self._routes.values()) or [self._listen_send]
        for target in targets:
            # BrokenResourceError: that exchange ended meanwhile, nothing left to give it.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await target.send(message)
        if isinstance(message, Response):
            for target in targets:
                target.close()

    def _fail(self, cls: type[ClientError], text: str) -> None:
        """End every exchange: each sees ``cls(text)`` (new ones at once)."""
        if self._failure is None:
            self._failure = (cls, text)
        for route in self._routes.values():
            route.close()
        self._routes.clear()
        self._listen_send.close()
