"""One tool call as a stream of events.

The reply of a ``tools/call`` is read by a task of the client's nursery
(reading must go on while the caller's code runs between events) into a
bounded memory channel, so a caller that reads slowly slows the reader and,
through TCP, the server: nothing piles up here. Iterating the call receives
from that channel; ``result()`` drains it. There is no async generator: the
call is its own iterator, so breaking out of ``async for`` leaves nothing for
the garbage collector to finalize.

Leaving the ``async with`` block before the result cancels the call: the
reader's cancel scope closes the response stream, which *is* the
cancellation in the 2026-07-28 era, and in the 2025-11-25 era, where a
dropped stream is not a cancel, the client also sends
``notifications/cancelled`` with the request id.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import trio

from flowkit.mcp import Notification, VersionPolicy

from ._events import Event, LogMessage, Progress, ToolResult
from ._exceptions import CallTimeout, ClientError, ProtocolError


class Client(Protocol):
    """What a call needs of its :class:`~flowkit_client.Client` (a protocol:
    the client module imports this one, so importing it back would be a cycle)."""

    policy: VersionPolicy

    @property
    def _closing_cancels(self) -> bool: ...

    def _params(
        self, params: Mapping[str, Any] | None, token: int | None = None
    ) -> dict[str, Any]: ...
    def _next_id(self) -> int: ...
    async def _cancel(self, request_id: int) -> None: ...
    async def _call_headers(self, name: str, arguments: Mapping[str, Any]) -> dict[str, str]: ...
    async def _fulfil(self, requests: Mapping[str, Any]) -> dict[str, Any]: ...
    async def _exchange(
        self,
        method: str,
        params: dict[str, Any],
        *,
        request_id: int | None = None,
        headers: Mapping[str, str] | None = None,
        deliver: Any = None,
        on_open: Any = None,
    ) -> Any: ...


__all__ = ["ToolCall", "open_call"]

_BUFFER = 64  # events read ahead of the caller
_MAX_ROUNDS = 16  # input_required rounds of one call


class ToolCall:
    """A running tool call: ``async for event in call`` and/or ``await call.result()``.

    Attributes:
        name: the tool.
        arguments: its arguments.
        request_id: the JSON-RPC id (also the progress token).
    """

    def __init__(
        self,
        client: Client,
        name: str,
        arguments: Mapping[str, Any],
        request_id: int,
        timeout: float | None,
    ) -> None:
        self.name = name
        self.arguments = arguments
        self.request_id = request_id
        self._client = client
        self._timeout = math.inf if timeout is None else timeout
        self._send, self._receive = trio.open_memory_channel[Event | ClientError](_BUFFER)
        self._scope = trio.CancelScope()
        self._finished = trio.Event()  # the reader is done (result, error or cancelled)
        self._answered = False  # the server's response arrived: nothing to cancel
        self._outcome: ToolResult | ClientError | None = None  # what the caller got last

    # -- the caller's side ----------------------------------------------------------

    def __aiter__(self) -> ToolCall:
        return self

    async def __anext__(self) -> Event:
        if self._outcome is not None:
            raise StopAsyncIteration
        try:
            item = await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        if isinstance(item, ClientError):
            self._outcome = item
            raise item
        if isinstance(item, ToolResult):
            self._outcome = item
        return item

    async def result(self) -> ToolResult:
        """The final result, skipping any events not read yet.

        Raises:
            ClientError: the call failed (see the exception tree); a tool that
                ran and failed is a result with ``is_error`` instead.
        """
        while self._outcome is None:
            await self.__anext__()
        if isinstance(self._outcome, ClientError):
            raise self._outcome
        return self._outcome

    # -- the reader -----------------------------------------------------------------

    async def _run(self) -> None:
        client = self._client
        call = {"name": self.name, "arguments": dict(self.arguments)}
        outcome: ToolResult | ClientError
        try:
            async with self._send:
                with self._scope:
                    try:
                        with trio.fail_after(self._timeout):
                            result = await self._rounds(call)
                        self._answered = True
                        outcome = ToolResult.from_json(result if isinstance(result, dict) else {})
                    except trio.TooSlowError:
                        outcome = CallTimeout(f"{self.name}: no result within {self._timeout} s")
                        if not client._closing_cancels:
                            await client._cancel(self.request_id)
                    except ClientError as exc:
                        self._answered = True  # nothing left to cancel either
                        outcome = exc
                    await self._send.send(outcome)
        finally:
            # Also when a scope outside ours is cancelled (the whole client).
            self._finished.set()

    async def _rounds(self, call: dict[str, Any]) -> Any:
        """The call, retried with the answers while the result is ``input_required``.

        "Multi round-trip requests" (2026-07-28, SEP-2322): a tool that needs
        input answers with ``inputRequests`` (elicitation, sampling, roots)
        and an opaque ``requestState``; the client answers them through its
        callbacks and sends the call again, as a new request (a new id, which
        is also the new progress token), echoing ``requestState`` only if
        there was one. Bounded, so a server asking forever cannot loop us.
        """
        client = self._client
        for _ in range(_MAX_ROUNDS):
            result = await client._exchange(
                "tools/call",
                client._params(call, token=self.request_id),
                request_id=self.request_id,
                headers=await client._call_headers(self.name, self.arguments),
                deliver=self._deliver,
            )
            if not isinstance(result, dict) or result.get("resultType") != "input_required":
                return result
            requests = result.get("inputRequests")
            state = result.get("requestState")
            call = {"name": self.name, "arguments": dict(self.arguments)}
            call["inputResponses"] = await client._fulfil(
                requests if isinstance(requests, dict) else {}
            )
            if isinstance(state, str):
                call["requestState"] = state
            self.request_id = client._next_id()
        raise ProtocolError(f"{self.name}: still input_required after {_MAX_ROUNDS} rounds")

    async def _deliver(self, message: Notification) -> None:
        params = message.params
        event: Event
        if message.method == "notifications/progress":
            if params.get("progressToken") != self.request_id:
                return
            total, note = params.get("total"), params.get("message")
            event = Progress(
                params.get("progress", 0),
                total if isinstance(total, int | float) else None,
                note if isinstance(note, str) else None,
            )
        elif message.method == "notifications/message":
            logger = params.get("logger")
            event = LogMessage(
                str(params.get("level", "info")),
                params.get("data"),
                logger if isinstance(logger, str) else None,
            )
        else:
            return  # list_changed and the like concern the session, not this call
        await self._send.send(event)

    async def _abandon(self) -> None:
        """Cancel the call if it is still running (leaving the block early)."""
        if self._finished.is_set():
            return
        self._scope.cancel()
        with trio.CancelScope(shield=True):
            await self._finished.wait()  # the stream is closed once the reader is out
        if not self._answered and not self._client._closing_cancels:
            await self._client._cancel(self.request_id)


@asynccontextmanager
async def open_call(nursery: trio.Nursery, call: ToolCall) -> AsyncIterator[ToolCall]:
    """Run ``call``'s reader in ``nursery`` for the block; cancel it on leaving early."""
    nursery.start_soon(call._run, name=f"flowkit_client call {call.name} #{call.request_id}")
    try:
        yield call
    finally:
        await call._abandon()
