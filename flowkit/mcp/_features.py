"""The server features beside tools: resources, prompts and completion.

Handlers like those of ``_methods``: plain functions of the endpoint's state
and the request. Lists are answered at once; a read, a prompt or a
completion needs the user's function, so its handler validates the request
and returns an :class:`~flowkit.mcp.Invoke` for the adapter to run, whose
``outcome`` (pure) builds the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from ._actions import Action, Invoke, json_reply
from ._completion import completion_result
from ._context import RequestContext, finish, request_context
from ._errors import RemoteProtocolError, method_not_found, method_params, resource_not_found
from ._pages import paginate
from ._prompts import prompt_result
from ._resources import ResourceTemplate, read_contents
from ._schema import context_parameter
from ._shared import SubscriptionChanged
from ._state import EndpointState

__all__ = [
    "PROMPTS_LIST_CHANGED",
    "RESOURCES_LIST_CHANGED",
    "RESOURCE_UPDATED",
    "completion_complete",
    "feature_capabilities",
    "prompts_get",
    "prompts_list",
    "resources_list",
    "resources_read",
    "resources_subscribe",
    "resources_templates_list",
    "resources_unsubscribe",
]

RESOURCES_LIST_CHANGED = "notifications/resources/list_changed"
PROMPTS_LIST_CHANGED = "notifications/prompts/list_changed"
RESOURCE_UPDATED = "notifications/resources/updated"
_EMPTY_COMPLETION = {"completion": {"values": [], "total": 0, "hasMore": False}}


def feature_capabilities(state: EndpointState) -> dict[str, Any]:
    """The capabilities of the features declared (none: nothing is announced)."""
    config, resources, prompts = state.config, state.resources, state.prompts
    out: dict[str, Any] = {}
    if len(resources):
        out["resources"] = {"subscribe": True, "listChanged": config.resources_list_changed}
    if len(prompts):
        out["prompts"] = {"listChanged": config.prompts_list_changed}
    if len(prompts) or resources.templates:
        out["completions"] = {}
    return out


def _string_param(params: Mapping[str, Any], key: str, ctx: RequestContext) -> str:
    value = params.get(key)
    if not isinstance(value, str):
        raise method_params(f'"{key}" must be a string', ctx.request.id)
    return value


def _page(
    state: EndpointState, ctx: RequestContext, items: Sequence[Any], key: str, kind: str
) -> Action:
    page, next_cursor = paginate(
        items, ctx.request.params.get("cursor"), state.config.page_size, kind
    )
    result: dict[str, Any] = {key: [item.to_json() for item in page]}
    if next_cursor is not None:
        result["nextCursor"] = next_cursor
    return json_reply(ctx.request.id, finish(state, ctx.policy, result, cacheable=True))


# -- resources ---------------------------------------------------------------------------


def resources_list(state: EndpointState, ctx: RequestContext) -> Action:
    """``resources/list``: one page of the static resources."""
    return _page(state, ctx, state.resources.resources, "resources", "resources")


def resources_templates_list(state: EndpointState, ctx: RequestContext) -> Action:
    """``resources/templates/list``: one page of the resource templates."""
    return _page(state, ctx, state.resources.templates, "resourceTemplates", "templates")


def _not_found(uri: str, ctx: RequestContext) -> RemoteProtocolError:
    return resource_not_found(uri, ctx.policy.resource_not_found_code, ctx.request.id)


def resources_read(state: EndpointState, ctx: RequestContext) -> Action:
    """``resources/read``: find what answers the URI, then let the adapter read it.

    An unknown URI is an error, never an empty ``contents`` ("Error
    Handling"; -32002 before 2026-07-28, -32602 since SEP-2164).
    """
    uri = _string_param(ctx.request.params, "uri", ctx)
    found = state.resources.find(uri)
    if found is None:
        raise _not_found(uri, ctx)
    item, variables = found

    def outcome(value: Any) -> dict[str, Any]:
        contents = read_contents(value, uri, item.mime_type)
        return finish(state, ctx.policy, contents, cacheable=True, ttl_ms=item.ttl_ms)

    def refusal(error: Exception) -> RemoteProtocolError | None:
        # A template reader says "no such resource" by raising LookupError.
        templated = isinstance(item, ResourceTemplate)
        return _not_found(uri, ctx) if templated and isinstance(error, LookupError) else None

    arguments: dict[str, Any] = dict(variables)
    context = context_parameter(item.fn)
    if context is not None:  # it may ask the client (stateless era, as prompts/get)
        arguments[context] = request_context(state, ctx)
    return Invoke(ctx.request.id, "resources/read", partial(item.fn, **arguments), outcome, refusal)


def resources_subscribe(state: EndpointState, ctx: RequestContext) -> Action:
    """``resources/subscribe`` (handshake era): updates of the URI go on the GET stream."""
    assert ctx.session is not None
    uri = _string_param(ctx.request.params, "uri", ctx)
    if state.resources.find(uri) is None:
        raise _not_found(uri, ctx)
    ctx.session.resource_subscriptions |= {uri}
    if state.journal is not None:  # shared: every instance carrying its streams learns it
        state.journal.append(SubscriptionChanged(ctx.session.id, uri, subscribed=True))
    return json_reply(ctx.request.id, {})


def resources_unsubscribe(state: EndpointState, ctx: RequestContext) -> Action:
    """``resources/unsubscribe``: no more updates for the URI (unknown ones are fine)."""
    assert ctx.session is not None
    uri = _string_param(ctx.request.params, "uri", ctx)
    ctx.session.resource_subscriptions -= {uri}
    if state.journal is not None:
        state.journal.append(SubscriptionChanged(ctx.session.id, uri, subscribed=False))
    return json_reply(ctx.request.id, {})


# -- prompts -------------------------------------------------------------------------------


def prompts_list(state: EndpointState, ctx: RequestContext) -> Action:
    """``prompts/list``: one page of prompts."""
    return _page(state, ctx, list(state.prompts), "prompts", "prompts")


def prompts_get(state: EndpointState, ctx: RequestContext) -> Action:
    """``prompts/get``: validate the arguments, then let the adapter render the prompt."""
    params, request_id = ctx.request.params, ctx.request.id
    name = _string_param(params, "name", ctx)
    prompt = state.prompts.get(name)
    if prompt is None:
        raise method_params(f"Unknown prompt: {name}", request_id)
    arguments: dict[str, Any] = dict(prompt.validate_arguments(params.get("arguments"), request_id))
    context = context_parameter(prompt.fn)
    if context is not None:
        # A prompt may ask the client too (SEP-2322 "Supported Requests":
        # prompts/get); in the handshake era it has no stream to ask on.
        arguments[context] = request_context(state, ctx)

    def outcome(value: Any) -> dict[str, Any]:
        return finish(state, ctx.policy, prompt_result(value, prompt.description))

    def refusal(error: Exception) -> RemoteProtocolError | None:
        # The documented way for a prompt to refuse an argument's value.
        return method_params(str(error), request_id) if isinstance(error, ValueError) else None

    return Invoke(request_id, "prompts/get", partial(prompt.fn, **arguments), outcome, refusal)


# -- completion ----------------------------------------------------------------------------


def completion_complete(state: EndpointState, ctx: RequestContext) -> Action:
    """``completion/complete`` for a prompt argument or a template variable.

    ``context.arguments`` (the arguments already resolved) goes to the
    completer. An argument without a completer completes to nothing. A
    server without the ``completions`` capability (no prompt, no template)
    answers -32601, "Capability not supported" ("Error Handling").
    """
    params, request_id = ctx.request.params, ctx.request.id
    if "completions" not in feature_capabilities(state):
        raise method_not_found(ctx.request.method, ctx.policy.unknown_method_status)
    ref, argument = params.get("ref"), params.get("argument")
    if not isinstance(ref, dict):
        raise method_params('"ref" must be an object', request_id)
    if not isinstance(argument, dict):
        raise method_params('"argument" must be an object', request_id)
    name = _string_param(argument, "name", ctx)
    value = _string_param(argument, "value", ctx)
    context = params.get("context")
    resolved = context.get("arguments") if isinstance(context, dict) else None
    if resolved is None:
        resolved = {}
    if not isinstance(resolved, dict) or not all(isinstance(v, str) for v in resolved.values()):
        raise method_params('"context.arguments" must map names to strings', request_id)
    if ref.get("type") == "ref/prompt":
        prompt = state.prompts.get(_string_param(ref, "name", ctx))
        if prompt is None:
            raise method_params(f"Unknown prompt: {ref['name']}", request_id)
        names, completers = [a.name for a in prompt.arguments], prompt.completers
    elif ref.get("type") == "ref/resource":
        template = state.resources.template(_string_param(ref, "uri", ctx))
        if template is None:
            raise method_params(f"Unknown resource template: {ref['uri']}", request_id)
        names, completers = list(template.variables), template.completers
    else:
        raise method_params('"ref.type" must be "ref/prompt" or "ref/resource"', request_id)
    if name not in names:
        raise method_params(f"No argument {name!r} to complete", request_id)
    completer = completers.get(name)
    if completer is None:
        return json_reply(request_id, finish(state, ctx.policy, dict(_EMPTY_COMPLETION)))

    def outcome(values: Any) -> dict[str, Any]:
        return finish(state, ctx.policy, completion_result(values))

    call = partial(completer, value, dict(resolved))
    return Invoke(request_id, "completion/complete", call, outcome)
