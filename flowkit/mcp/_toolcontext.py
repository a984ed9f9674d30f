"""The context a tool receives: who calls it, and how it asks its client.

A tool gets a :class:`ToolContext` by declaring a parameter annotated with
it; that parameter never appears in the input schema::

    @tools.tool
    async def book(city: str, ctx: ToolContext) -> str:
        answer = await ctx.elicit("How many nights?", {
            "type": "object",
            "properties": {"nights": {"type": "integer", "minimum": 1, "default": 2}},
            "required": ["nights"],
        })
        return f"{answer.content['nights']} nights in {city}" if answer.accepted else "no booking"

The tool is written once for both eras; what ``await ctx.elicit(...)``
does differs:

* 2025-11-25 (handshake era): the request goes out on the call's stream and
  the tool waits for the client's answer (at most ``ask_timeout``);
* 2026-07-28 (stateless era, SEP-2322): the call *ends* with an
  ``InputRequiredResult``; when the client retries with the answers, the tool
  **runs again from the start**, and each question already answered returns
  its answer at once (replayed from the sealed ``requestState``). So code
  before an ``await ctx.…`` may run once per round: keep it idempotent, e.g.
  keyed on :attr:`ToolContext.call_id` (the same in every round of one
  call), or skip side effects while :attr:`ToolContext.round` says a replay.

The context is pure: how a request reaches the client is the ``ask`` function
the adapter (handshake era) or the replay (stateless era) supplies.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._asks import (
    ELICIT,
    LIST_ROOTS,
    SAMPLE,
    ClientRequest,
    ClientRequestError,
    ElicitResult,
    MissingClientCapability,
    Root,
    SamplingResult,
    elicitation_request,
    roots_request,
    sampling_request,
    url_elicitation_request,
)
from ._jsonrpc import RequestId

__all__ = ["Ask", "InputRequired", "ToolContext"]

Ask = Callable[[Sequence[ClientRequest]], Awaitable[list[Any]]]
"""Sends requests to the client and returns their raw results, in order."""

Notify = Callable[[str, Mapping[str, Any]], Awaitable[None]]
"""Sends a notification to the client on the call's stream (handshake era)."""

_KINDS = {ELICIT: "elicitation", SAMPLE: "sampling", LIST_ROOTS: "roots"}


class InputRequired(BaseException):
    """Ends a stateless-era call that awaits answers; carries its ``InputRequiredResult``.

    Raised by ``await ctx.elicit(...)`` (and friends) when the answer is not
    in the retry. A ``BaseException`` so that a tool's ``except Exception``
    does not swallow it: let it through, as you would ``trio.Cancelled``.
    """

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("the call needs input from the client")
        self.result = result


class ToolContext:
    """What one call of a tool knows about its caller, and how it asks it things.

    Attributes:
        request_id: the JSON-RPC id of the call (a new one each round in the
            stateless era).
        principal: who the server authenticated, or ``None``.
        client_capabilities: what the client declared (``initialize``'s
            ``capabilities``, or the request's ``clientCapabilities``).
        protocol_version: the revision in force.
        call_id: an id stable across the rounds of one call (stateless era:
            kept in the sealed ``requestState``); an idempotency key for work
            done before an ``await ctx.…``.
        round: how many ``InputRequiredResult`` rounds came before this run
            (0: the first run; always 0 in the handshake era).
    """

    # What the schema derivation recognises a context parameter by
    # (flowkit.mcp._schema.context_parameter), without importing this module.
    __flowkit_context__ = True

    __slots__ = (
        "_ask",
        "_asked",
        "_notify",
        "call_id",
        "client_capabilities",
        "principal",
        "protocol_version",
        "request_id",
        "round",
    )

    def __init__(
        self,
        *,
        request_id: RequestId,
        call_id: str,
        protocol_version: str,
        principal: str | None = None,
        client_capabilities: Mapping[str, Any] | None = None,
        round: int = 0,
        ask: Ask | None = None,
        notify: Notify | None = None,
    ) -> None:
        self.request_id = request_id
        self.call_id = call_id
        self.protocol_version = protocol_version
        self.principal = principal
        caps = client_capabilities
        self.client_capabilities: Mapping[str, Any] = caps if isinstance(caps, Mapping) else {}
        self.round = round
        self._ask = ask
        self._notify = notify
        self._asked = 0

    def __repr__(self) -> str:
        return f"<ToolContext call={self.call_id} request={self.request_id!r} round={self.round}>"

    def supports(self, capability: Literal["elicitation", "sampling", "roots"]) -> bool:
        """The client declared ``capability`` (``"elicitation"``, ``"sampling"``, ``"roots"``)."""
        return isinstance(self.client_capabilities.get(capability), Mapping)

    async def ask(self, *requests: ClientRequest) -> list[Any]:
        """Send several requests at once; their answers, in order.

        In the stateless era they form one round (one ``InputRequiredResult``
        with every unanswered one); in the handshake era they go out together
        and the call waits for all of them.

        Raises:
            MissingClientCapability: the client did not declare what one of
                them needs (nothing is sent).
            ClientRequestError: the client answered one with an error, an
                answer has the wrong shape (``InvalidClientResponse``) or
                none came in time (``ClientRequestTimeout``).
        """
        keyed: list[ClientRequest] = []
        for request in requests:
            problem = request.capability_problem(self.client_capabilities)
            if problem is not None:
                raise MissingClientCapability(f"cannot send {request.method}: {problem}")
            self._asked += 1
            key = request.key or f"{_KINDS[request.method]}_{self._asked}"
            keyed.append(attrs.evolve(request, key=key))
        if self._ask is None:
            raise ClientRequestError(
                "no channel to ask the client on: a handshake-era prompts/get or "
                "resources/read (only tool calls stream), or not served by MCP"
            )
        results = await self._ask(keyed)
        return [request.parse(raw) for request, raw in zip(keyed, results, strict=True)]

    async def elicit(
        self, message: str, schema: Mapping[str, Any], *, key: str | None = None
    ) -> ElicitResult:
        """Ask the user for values (form mode; see :func:`~flowkit.mcp.elicitation_request`)."""
        [result] = await self.ask(elicitation_request(message, schema, key=key))
        return typing.cast(ElicitResult, result)

    async def elicit_url(
        self, message: str, url: str, *, elicitation_id: str | None = None, key: str | None = None
    ) -> ElicitResult:
        """Send the user to ``url`` out of band (URL mode); ``accept`` is their consent.

        ``elicitation_id`` defaults to one derived from :attr:`call_id`, so it
        is the same in every round of a stateless-era call.
        """
        eid = elicitation_id if elicitation_id is not None else f"{self.call_id}-{self._asked + 1}"
        [result] = await self.ask(url_elicitation_request(message, url, eid, key=key))
        return typing.cast(ElicitResult, result)

    async def elicitation_complete(self, elicitation_id: str) -> bool:
        """Tell the client a URL-mode interaction finished out of band.

        ``notifications/elicitation/complete`` on the call's stream, so only
        the client that was sent the elicitation gets it (2025-11-25, which
        makes it optional). Returns whether it went out: the stateless era
        has no channel for it (the client retries when the user is done).
        """
        if self._notify is None:
            return False
        await self._notify("notifications/elicitation/complete", {"elicitationId": elicitation_id})
        return True

    async def sample(
        self, messages: str | Sequence[Mapping[str, Any]], *, max_tokens: int, **options: Any
    ) -> SamplingResult:
        """Ask the client's LLM for a completion (see :func:`~flowkit.mcp.sampling_request`)."""
        [result] = await self.ask(sampling_request(messages, max_tokens=max_tokens, **options))
        return typing.cast(SamplingResult, result)

    async def list_roots(self, *, key: str | None = None) -> tuple[Root, ...]:
        """The client's roots (``roots/list``)."""
        [result] = await self.ask(roots_request(key=key))
        return typing.cast(tuple[Root, ...], result)
