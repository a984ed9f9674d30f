"""What a tool may ask its client: elicitation, sampling and roots, as data.

A :class:`ClientRequest` is one server-to-client request (``elicitation/create``,
``sampling/createMessage``, ``roots/list``), built and checked here, so a tool
that asks for something malformed or something the client never declared
fails before anything goes out. The same request travels two ways:

* 2025-11-25 (handshake era): as a JSON-RPC request on the call's SSE stream
  (or stdio channel); the client answers with a JSON-RPC response;
* 2026-07-28 (stateless era): inside an ``InputRequiredResult``'s
  ``inputRequests`` (SEP-2322); the client answers in ``inputResponses`` when
  it retries.

Either way the client's answer is checked here too (:meth:`ClientRequest.parse`)
and turned into a small value (:class:`ElicitResult`, :class:`SamplingResult`,
a tuple of :class:`Root`), or into a :class:`ClientRequestError` the tool can
catch. Everything is pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import jsonschema
import jsonschema.exceptions
import orjson
from jsonschema import Draft202012Validator

from .._exceptions import FlowkitError
from ._errors import LocalProtocolError
from ._forms import check_form_schema
from ._jsonrpc import Response
from ._schema import FORMATS

__all__ = [
    "ELICIT",
    "LIST_ROOTS",
    "SAMPLE",
    "ClientRequest",
    "ClientRequestError",
    "ClientRequestTimeout",
    "ElicitResult",
    "InvalidClientResponse",
    "MissingClientCapability",
    "Root",
    "SamplingResult",
    "elicitation_request",
    "result_of",
    "roots_request",
    "sampling_request",
    "url_elicitation_request",
]

ELICIT = "elicitation/create"
SAMPLE = "sampling/createMessage"
LIST_ROOTS = "roots/list"


class ClientRequestError(FlowkitError):
    """The client gave no usable answer to a request the tool sent it.

    Raised from ``await ctx.elicit(...)`` and friends. The base class is the
    client's own JSON-RPC error (``code``, ``message``, ``data`` as it sent
    them); the subclasses say what else went wrong.
    """

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class MissingClientCapability(ClientRequestError):
    """The client did not declare the capability the request needs; nothing was sent."""


class ClientRequestTimeout(ClientRequestError):
    """No answer came within ``EndpointConfig.ask_timeout``; the request was cancelled."""


class InvalidClientResponse(ClientRequestError):
    """The client's answer does not have the shape the spec gives it."""


@attrs.frozen
class ElicitResult:
    """The user's answer to an elicitation.

    Attributes:
        action: ``"accept"`` (submitted), ``"decline"`` (refused explicitly)
            or ``"cancel"`` (dismissed).
        content: the submitted values (form mode, ``accept`` only), checked
            against the requested schema; ``None`` otherwise.
    """

    action: Literal["accept", "decline", "cancel"]
    content: Mapping[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        """The user submitted (``action == "accept"``)."""
        return self.action == "accept"


@attrs.frozen
class SamplingResult:
    """The client's LLM completion (``CreateMessageResult``).

    Attributes:
        role: ``"assistant"`` (or ``"user"``).
        content: one content block (``{"type": "text", "text": ...}``) or,
            with tools, a list of them, as sent.
        model: the model the client used.
        stop_reason: why it stopped (``"endTurn"``, ``"toolUse"``...), if said.
    """

    role: str
    content: Any
    model: str
    stop_reason: str | None = None

    @property
    def text(self) -> str:
        """The text of the completion's text blocks, joined (``""`` if none)."""
        blocks = self.content if isinstance(self.content, list) else [self.content]
        return "".join(b.get("text", "") for b in blocks if b.get("type") == "text")


@attrs.frozen
class Root:
    """One root the client exposes (a ``file://`` URI and an optional name)."""

    uri: str
    name: str | None = None


_Parser = Any  # (request, result) -> value; see _PARSERS


@attrs.frozen
class ClientRequest:
    """One request to the client, checked when built.

    Build it with :func:`elicitation_request`, :func:`url_elicitation_request`,
    :func:`sampling_request` or :func:`roots_request`.

    Attributes:
        method: the JSON-RPC method.
        params: its params, as sent.
        key: the ``inputRequests`` key in the stateless era (``None``: the
            tool context numbers it); unused in the handshake era.
    """

    method: str
    params: Mapping[str, Any]
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The request object (``{"method", "params"}``) of ``inputRequests``."""
        return {"method": self.method, "params": dict(self.params)}

    def digest(self) -> str:
        """A stable digest of method and params: an answer belongs to this exact question."""
        body = orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(body).hexdigest()[:32]

    def capability_problem(self, declared: Any) -> str | None:
        """Why a client that declared ``declared`` may not be sent this (``None``: it may)."""
        have = declared if isinstance(declared, Mapping) else {}
        if self.method == ELICIT:
            elicit = have.get("elicitation")
            if not isinstance(elicit, Mapping):
                return "the client did not declare the elicitation capability"
            mode = self.params.get("mode", "form")
            # An empty object declares form mode only (backwards compatibility).
            modes = set(elicit) & {"form", "url"} or {"form"}
            if mode not in modes:
                return f"the client did not declare elicitation in {mode} mode"
            return None
        if self.method == SAMPLE:
            sampling = have.get("sampling")
            if not isinstance(sampling, Mapping):
                return "the client did not declare the sampling capability"
            if "tools" in self.params and "tools" not in sampling:
                return "the client did not declare sampling.tools (tool use in sampling)"
            if self.params.get("includeContext", "none") != "none" and "context" not in sampling:
                return "the client did not declare sampling.context (includeContext)"
            return None
        if not isinstance(have.get("roots"), Mapping):
            return "the client did not declare the roots capability"
        return None

    def parse(self, result: Any) -> Any:
        """The client's result as the tool's value.

        Raises:
            InvalidClientResponse: it has not the shape the spec gives it.
        """
        if not isinstance(result, Mapping):
            raise InvalidClientResponse(f"the answer to {self.method} is not an object")
        value: Any = _PARSERS[self.method](self, result)
        return value


def result_of(response: Response) -> Any:
    """The result of a client's JSON-RPC response.

    Raises:
        ClientRequestError: the client answered with an error.
        InvalidClientResponse: the error is not a JSON-RPC error object.
    """
    if response.error is None:
        return response.result
    error = response.error
    if (
        not isinstance(error, Mapping)
        or type(error.get("code")) is not int
        or not isinstance(error.get("message"), str)
    ):
        raise InvalidClientResponse("the client answered with a malformed JSON-RPC error")
    raise ClientRequestError(error["message"], code=error["code"], data=error.get("data"))


def _parse_elicit(request: ClientRequest, result: Mapping[str, Any]) -> ElicitResult:
    action = result.get("action")
    if action not in ("accept", "decline", "cancel"):
        raise InvalidClientResponse(
            f'elicitation "action" must be accept, decline or cancel, not {action!r}'
        )
    if action != "accept" or request.params.get("mode") == "url":
        return ElicitResult(action)
    content = result.get("content", {})
    if not isinstance(content, Mapping):
        raise InvalidClientResponse('elicitation "content" must be an object')
    schema = request.params["requestedSchema"]
    error = jsonschema.exceptions.best_match(
        Draft202012Validator(schema, format_checker=FORMATS).iter_errors(dict(content))
    )
    if error is not None:
        raise InvalidClientResponse(
            f"elicitation content does not match the requested schema: {error.message}"
        )
    return ElicitResult(action, dict(content))


def _is_block(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("type"), str)


def _parse_sample(request: ClientRequest, result: Mapping[str, Any]) -> SamplingResult:
    role, content, model = result.get("role"), result.get("content"), result.get("model")
    stop = result.get("stopReason")
    if role not in ("assistant", "user"):
        raise InvalidClientResponse(f'sampling "role" must be assistant or user, not {role!r}')
    blocks = content if isinstance(content, list) else [content]
    if not blocks or not all(_is_block(b) for b in blocks):
        raise InvalidClientResponse('sampling "content" must be a content block (or a list)')
    if not isinstance(model, str):
        raise InvalidClientResponse('sampling "model" must be a string')
    if stop is not None and not isinstance(stop, str):
        raise InvalidClientResponse('sampling "stopReason" must be a string')
    return SamplingResult(role, content, model, stop)


def _parse_roots(request: ClientRequest, result: Mapping[str, Any]) -> tuple[Root, ...]:
    roots = result.get("roots")
    if not isinstance(roots, list):
        raise InvalidClientResponse('roots/list result needs a "roots" list')
    parsed = []
    for root in roots:
        uri = root.get("uri") if isinstance(root, Mapping) else None
        name = root.get("name") if isinstance(root, Mapping) else None
        # "uri: This MUST be a file:// URI" (2025-11-25 roots).
        if not isinstance(uri, str) or not uri.startswith("file://"):
            raise InvalidClientResponse(f"a root needs a file:// uri, not {uri!r}")
        if name is not None and not isinstance(name, str):
            raise InvalidClientResponse('a root\'s "name" must be a string')
        parsed.append(Root(uri, name))
    return tuple(parsed)


_PARSERS = {ELICIT: _parse_elicit, SAMPLE: _parse_sample, LIST_ROOTS: _parse_roots}

# -- building requests -------------------------------------------------------------------


def elicitation_request(
    message: str, schema: Mapping[str, Any], *, key: str | None = None
) -> ClientRequest:
    """A form-mode ``elicitation/create``: ask the user for values.

    ``schema`` is the restricted JSON Schema of form mode: an object of
    primitive properties (string with optional format, number, integer,
    boolean), single-select enums (``enum``, or ``oneOf`` of ``{const,
    title}``) and multi-select enums (an array whose ``items`` are such an
    enum), each with an optional ``default`` the client pre-fills (SEP-1034,
    SEP-1330). Never ask for passwords or keys this way: use
    :func:`url_elicitation_request`.

    Raises:
        LocalProtocolError: the schema is outside that subset, or a default
            does not match its property.
    """
    if not isinstance(message, str):
        raise LocalProtocolError("an elicitation message must be a string")
    check_form_schema(schema)
    params = {"mode": "form", "message": message, "requestedSchema": dict(schema)}
    return ClientRequest(ELICIT, params, key)


def url_elicitation_request(
    message: str, url: str, elicitation_id: str, *, key: str | None = None
) -> ClientRequest:
    """A URL-mode ``elicitation/create``: send the user to ``url`` (out of band).

    For what must not pass through the client (credentials, payments). An
    ``accept`` means the user agreed to go, not that the interaction is over.
    """
    if not isinstance(url, str) or "://" not in url:
        raise LocalProtocolError(f"a URL elicitation needs an absolute URL, not {url!r}")
    if not isinstance(elicitation_id, str) or not elicitation_id:
        raise LocalProtocolError("a URL elicitation needs a non-empty elicitation_id")
    params = {"mode": "url", "message": message, "url": url, "elicitationId": elicitation_id}
    return ClientRequest(ELICIT, params, key)


def sampling_request(
    messages: str | Sequence[Mapping[str, Any]],
    *,
    max_tokens: int,
    system_prompt: str | None = None,
    temperature: float | None = None,
    stop_sequences: Sequence[str] | None = None,
    model_preferences: Mapping[str, Any] | None = None,
    include_context: Literal["none", "thisServer", "allServers"] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> ClientRequest:
    """A ``sampling/createMessage``: ask the client's LLM for a completion.

    ``messages`` is a list of ``SamplingMessage`` objects, or one string (a
    single user text message).
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": {"type": "text", "text": messages}}]
    if not messages or not all(isinstance(m, Mapping) and "role" in m for m in messages):
        raise LocalProtocolError("sampling needs at least one message with a role")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise LocalProtocolError(f"max_tokens must be a positive integer, not {max_tokens!r}")
    params: dict[str, Any] = {"messages": [dict(m) for m in messages], "maxTokens": max_tokens}
    optional = {
        "systemPrompt": system_prompt,
        "temperature": temperature,
        "stopSequences": list(stop_sequences) if stop_sequences is not None else None,
        "modelPreferences": dict(model_preferences) if model_preferences is not None else None,
        "includeContext": include_context,
        "tools": [dict(t) for t in tools] if tools is not None else None,
        "toolChoice": dict(tool_choice) if tool_choice is not None else None,
        "metadata": dict(metadata) if metadata is not None else None,
    }
    params.update({name: value for name, value in optional.items() if value is not None})
    return ClientRequest(SAMPLE, params, key)


def roots_request(*, key: str | None = None) -> ClientRequest:
    """A ``roots/list``: which directories the client lets the server work in."""
    return ClientRequest(LIST_ROOTS, {}, key)
