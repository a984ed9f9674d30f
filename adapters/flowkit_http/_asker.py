"""The handshake era's way for a tool to ask its client: out on the stream, back by POST.

A tool's ``await ctx.elicit(...)`` (and sampling, roots) lands here in the
2025-11-25 era: the core frames each request as an event on the call's own
stream (``Endpoint.ask``), the outbox delivers it like any event (never
dropped, filed in the event store for a client that resumes), and the tool
waits until the client's JSON-RPC response arrives in a POST, which the core
turns into an :class:`~flowkit.mcp.Answer` for :meth:`LiveAsker.deliver`.

The wait is bounded (``EndpointConfig.ask_timeout``): then the client is sent
``notifications/cancelled`` for the request and the tool gets
:class:`~flowkit.mcp.ClientRequestTimeout`. A cancelled call (the client's
cancel, DELETE, the detached-call grace running out, shutdown) ends the
wait with ``trio.Cancelled``, as any await. Either way the core forgets the
request, so a response arriving later is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from flowkit.mcp import (
    Answer,
    ClientRequest,
    ClientRequestTimeout,
    Endpoint,
    OutgoingStream,
    Response,
    result_of,
)

from ._outbox import Outbox

__all__ = ["LiveAsker", "check_request_state_keys"]

logger = logging.getLogger("flowkit_http")


class _Slot:
    __slots__ = ("answered", "response")

    def __init__(self) -> None:
        self.answered = trio.Event()
        self.response: Response | None = None


class LiveAsker:
    """The ``ask`` of one handshake-era call's :class:`~flowkit.mcp.ToolContext`."""

    def __init__(
        self, endpoint: Endpoint, stream: OutgoingStream, outbox: Outbox, timeout: float
    ) -> None:
        self._endpoint = endpoint
        self._stream = stream
        self._outbox = outbox
        self._timeout = timeout
        self._waiting: dict[str, _Slot] = {}

    def deliver(self, answer: Answer) -> None:
        """The client answered: wake the tool waiting for it (if it still waits)."""
        slot = self._waiting.get(answer.ask_id)
        if slot is not None and slot.response is None:
            slot.response = answer.response
            slot.answered.set()

    async def notify(self, method: str, params: Mapping[str, Any]) -> None:
        """A notification on the call's stream (``notifications/elicitation/complete``)."""
        self._outbox.add("request", self._stream.notify(method, params))
        await self._outbox.flush()

    async def __call__(self, requests: Sequence[ClientRequest]) -> list[Any]:
        """Send ``requests`` on the call's stream; their results, in order."""
        endpoint, stream, outbox = self._endpoint, self._stream, self._outbox
        asked: list[tuple[str, _Slot]] = []
        try:
            for request in requests:
                ask_id, data = endpoint.ask(stream, request)
                slot = self._waiting[ask_id] = _Slot()
                asked.append((ask_id, slot))
                outbox.add("request", data)
            await outbox.flush()
            with trio.move_on_after(self._timeout):
                for _, slot in asked:
                    await slot.answered.wait()
            late = [ask_id for ask_id, slot in asked if slot.response is None]
            if late:
                reason = f"no answer within {self._timeout:g} s"
                for ask_id in late:
                    outbox.add("request", endpoint.forget_ask(stream, ask_id, cancel=reason))
                await outbox.flush()
                methods = ", ".join(sorted({r.method for r in requests}))
                raise ClientRequestTimeout(
                    f"the client did not answer {methods} in time ({reason})"
                )
            return [result_of(slot.response) for _, slot in asked if slot.response is not None]
        finally:
            for ask_id, _ in asked:
                self._waiting.pop(ask_id, None)
                endpoint.forget_ask(stream, ask_id)


def check_request_state_keys(endpoint: Endpoint, *, shared: bool) -> None:
    """At start-up: say (or refuse) what a per-process ``requestState`` key means.

    Without ``request_state_keys`` each process seals with a random key of
    its own, so a stateless-era retry served by another instance is refused
    as tampered. Where tools ask their client, that is logged; on a server
    sharing its state with other instances it is a configuration error.

    Raises:
        RuntimeError: shared, with a tool that asks and no keys configured.
    """
    if endpoint.config.request_state_keys:
        return
    asking = sorted(tool.name for tool in endpoint.tools if tool.context_param is not None)
    if not asking:
        return
    message = (
        "no request_state_keys configured: requestState (2026-07-28 input-required results "
        "of %s) is sealed with a random per-process key, so a retry served by another "
        "instance is refused; configure the same keys on every instance"
    )
    if shared:
        raise RuntimeError(message % ", ".join(asking))
    logger.info(message, ", ".join(asking))
