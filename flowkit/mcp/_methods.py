"""The JSON-RPC methods an :class:`~flowkit.mcp.Endpoint` answers.

Each handler is a plain function of the endpoint's state and the request
context, returning an action; the endpoint routes to them through per-era
tables (``method name -> handler``, :data:`HANDSHAKE_METHODS` and
:data:`STATELESS_METHODS`), so which methods exist in which protocol revision
is data, not branches. ``initialize`` is a row like the others; it is the one
method that opens a session (:data:`OPENS_SESSION`) instead of needing one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._actions import Action, OpenListenStream, StartCall, json_reply
from ._content import error_result
from ._context import Handler, RequestContext, finish, replay_for
from ._errors import (
    header_mismatch,
    method_params,
    missing_capabilities,
    request_in_flight,
    request_params,
    session_forbidden,
    too_many_calls,
)
from ._features import (
    completion_complete,
    feature_capabilities,
    prompts_get,
    prompts_list,
    resources_list,
    resources_read,
    resources_subscribe,
    resources_templates_list,
    resources_unsubscribe,
)
from ._headers import may_open_session
from ._jsonrpc import RequestId
from ._levels import LOG_LEVELS, LogThreshold
from ._state import EndpointState
from ._stateless import META_PREFIX, validate_param_headers
from ._stream import OutgoingStream, progress_token_problem
from ._versions import negotiate_version

__all__ = [
    "HANDSHAKE_METHODS",
    "OPENS_SESSION",
    "STATELESS_METHODS",
    "TOOLS_LIST_CHANGED",
    "Handler",
    "RequestContext",
    "capabilities",
]

TOOLS_LIST_CHANGED = "notifications/tools/list_changed"
# subscriptions/listen filter fields we can honour, and the capability behind each.
_SUBSCRIBABLE = {
    "toolsListChanged": "tools",
    "promptsListChanged": "prompts",
    "resourcesListChanged": "resources",
}
# W3C trace context carried in params._meta (MCP semantic conventions).
_TRACE_KEYS = ("traceparent", "tracestate")


def _progress_token(params: dict[str, Any], request_id: RequestId) -> str | int | None:
    meta = params.get("_meta")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise method_params('"_meta" must be an object', request_id)
    token = meta.get("progressToken")
    problem = progress_token_problem(token)
    if problem is not None:
        raise method_params(problem, request_id)
    return token


def _log_threshold(ctx: RequestContext) -> LogThreshold | None:
    """The session's threshold, or a stateless request's own (``None``: no logs)."""
    if ctx.session is not None:
        return ctx.session.log_threshold
    level = ctx.meta.log_level if ctx.meta is not None else None
    return LogThreshold(level) if level is not None else None


def _trace_context(params: dict[str, Any]) -> dict[str, str]:
    """``traceparent``/``tracestate`` from ``params._meta`` (already checked to be an object)."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        return {}
    return {key: meta[key] for key in _TRACE_KEYS if isinstance(meta.get(key), str)}


def capabilities(state: EndpointState) -> dict[str, Any]:
    """The server capabilities both eras announce."""
    return {
        "tools": {"listChanged": state.config.tools_list_changed},
        "logging": {},
        **feature_capabilities(state),
    }


def initialize(state: EndpointState, ctx: RequestContext) -> Action:
    """``initialize``: negotiate the revision and open a session bound to the principal."""
    request = ctx.request
    if ctx.session is not None or ctx.head.get("mcp-session-id") is not None:
        raise session_forbidden(request.id)
    # Only a head that may open a session counts the cluster's sessions
    # (``_headers.may_open_session``): one naming another method must not
    # carry an initialize past the cluster-wide cap.
    if not may_open_session(ctx.head):
        named = ctx.head.get("mcp-method")
        raise header_mismatch(f"Mcp-Method {named!r} does not match body 'initialize'", request.id)
    params = request.params
    requested = params.get("protocolVersion")
    if not isinstance(requested, str):
        raise request_params('"protocolVersion" must be a string', request.id)
    policy = negotiate_version(requested, state.config.versions)
    session = state.sessions.create(
        state.clock(),
        live_elsewhere=state.loaded.live_sessions,
        principal=ctx.principal,
        policy=policy,
        log_level=state.config.default_log_level,
        client_info=params.get("clientInfo"),
        client_capabilities=params.get("capabilities"),
        client=ctx.client,
    )
    result: dict[str, Any] = {
        "protocolVersion": policy.version,
        "capabilities": capabilities(state),
        "serverInfo": state.config.server_info(),
    }
    if state.config.instructions is not None:
        result["instructions"] = state.config.instructions
    return json_reply(request.id, result, ((b"mcp-session-id", session.id.encode("ascii")),))


def ping(state: EndpointState, ctx: RequestContext) -> Action:
    """``ping``: an empty result."""
    return json_reply(ctx.request.id, {})


def discover(state: EndpointState, ctx: RequestContext) -> Action:
    """``server/discover`` (stateless era): versions, capabilities, server info."""
    result: dict[str, Any] = {
        "supportedVersions": sorted(state.config.versions, reverse=True),
        "capabilities": capabilities(state),
        "_meta": {META_PREFIX + "serverInfo": state.config.server_info()},
    }
    if state.config.instructions is not None:
        result["instructions"] = state.config.instructions
    return json_reply(ctx.request.id, finish(state, ctx.policy, result, cacheable=True))


def tools_list(state: EndpointState, ctx: RequestContext) -> Action:
    """``tools/list``: one page of tools."""
    cursor = ctx.request.params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise method_params("Invalid cursor", ctx.request.id)
    page, next_cursor = state.tools.page(cursor, state.config.page_size)
    result: dict[str, Any] = {"tools": [tool.to_json() for tool in page]}
    if next_cursor is not None:
        result["nextCursor"] = next_cursor
    return json_reply(ctx.request.id, finish(state, ctx.policy, result, cacheable=True))


def set_level(state: EndpointState, ctx: RequestContext) -> Action:
    """``logging/setLevel``: move the session's threshold, for running calls too."""
    assert ctx.session is not None
    level = ctx.request.params.get("level")
    if not isinstance(level, str) or level not in LOG_LEVELS:
        raise method_params(f"Invalid log level: {level!r}", ctx.request.id)
    ctx.session.log_threshold.set(level)
    state.sessions.saved(ctx.session)
    return json_reply(ctx.request.id, {})


def tools_call(state: EndpointState, ctx: RequestContext) -> Action:
    """``tools/call``: validate, then hand the adapter a stream to run the tool on."""
    request, session, policy = ctx.request, ctx.session, ctx.policy
    params = request.params
    name = params.get("name")
    if not isinstance(name, str):
        raise method_params('"name" must be a string', request.id)
    tool = state.tools.get(name)
    if tool is None:
        raise method_params(f"Unknown tool: {name}", request.id)
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise method_params('"arguments" must be an object', request.id)
    if policy.method_headers:
        validate_param_headers(ctx.head, tool, arguments, request.id)
    declared = ctx.client_capabilities
    missing = tool.missing_capabilities(declared)
    if missing:
        raise missing_capabilities(name, missing, policy.capability_error_status, request.id)
    token = ctx.meta.progress_token if ctx.meta else _progress_token(params, request.id)
    if session is not None and (
        request.id in session.in_flight or request.id in session.running_elsewhere
    ):
        raise request_in_flight(request.id)
    config = state.config
    if session is not None and (
        len(session.in_flight) + len(session.running_elsewhere) >= config.max_calls_per_session
    ):
        raise too_many_calls("session", config.max_calls_per_session, config.calls_retry_after)
    if len(state.running) >= config.max_calls:
        raise too_many_calls("server", config.max_calls, config.calls_retry_after)
    problem = tool.validate_arguments(arguments)
    if problem is not None:
        # A tool execution error, not a protocol error: the model can read
        # it and retry ("Error Handling", 2025-11-25 tools).
        return json_reply(request.id, finish(state, policy, error_result(problem)))
    # The stateless era: answers to the tool's questions come with the retry,
    # and earlier rounds' from the sealed requestState (SEP-2322).
    replay = replay_for(state, ctx) if tool.context_param is not None else None
    stream = OutgoingStream(
        kind="call",
        stream_id=session.new_stream_id(state.instance) if session is not None else "0",
        session_id=session.id if session is not None else None,
        request_id=request.id,
        progress_token=token,
        tool=tool,
        store=state.event_store if policy.resumable else None,
        retry_ms=state.config.sse_retry_ms,
        log_threshold=_log_threshold(ctx),
        result_type=policy.result_type,
        disconnect_cancels=policy.disconnect_cancels,
        on_done=state.call_done,
        binding=ctx.head.binding,
    )
    state.call_started(session, stream)
    return StartCall(
        stream.session_id,
        request.id,
        tool,
        arguments,
        token,
        stream,
        _trace_context(params),
        protocol_version=policy.version,
        principal=ctx.principal,
        client_capabilities=declared if isinstance(declared, dict) else None,
        call_id=secrets.token_urlsafe(12) if tool.context_param is not None else "",
        replay=replay,
    )


def listen(state: EndpointState, ctx: RequestContext) -> Action:
    """``subscriptions/listen``: a long-lived stream of change notifications.

    The acknowledgement (the stream's first event) reports the subset of
    the requested filter we honour; we never send a type not in it.
    """
    request = ctx.request
    wanted = request.params.get("notifications")
    if not isinstance(wanted, dict):
        raise method_params('"notifications" must be an object', request.id)
    offered = capabilities(state)
    agreed: dict[str, Any] = {
        field: True
        for field, capability in _SUBSCRIBABLE.items()
        if wanted.get(field) is True and offered.get(capability, {}).get("listChanged")
    }
    uris = wanted.get("resourceSubscriptions")
    if uris is not None:
        if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
            raise method_params('"resourceSubscriptions" must be a list of URIs', request.id)
        if uris and offered.get("resources", {}).get("subscribe"):
            agreed["resourceSubscriptions"] = list(dict.fromkeys(uris))
    stream = OutgoingStream(
        kind="listen",
        stream_id="0",
        request_id=request.id,
        subscription=agreed,
        binding=ctx.head.binding,
    )
    state.subscriptions[stream] = None
    return OpenListenStream(None, stream)


OPENS_SESSION = frozenset({"initialize"})
"""Handshake-era methods served without a session (they create one)."""

HANDSHAKE_METHODS: Mapping[str, Handler] = MappingProxyType(
    {
        "initialize": initialize,
        "ping": ping,
        "tools/list": tools_list,
        "tools/call": tools_call,
        "logging/setLevel": set_level,
        "resources/list": resources_list,
        "resources/templates/list": resources_templates_list,
        "resources/read": resources_read,
        "resources/subscribe": resources_subscribe,
        "resources/unsubscribe": resources_unsubscribe,
        "prompts/list": prompts_list,
        "prompts/get": prompts_get,
        "completion/complete": completion_complete,
    }
)
"""The requests a session answers (2025-03-26 .. 2025-11-25)."""

STATELESS_METHODS: Mapping[str, Handler] = MappingProxyType(
    {
        "server/discover": discover,
        "tools/list": tools_list,
        "tools/call": tools_call,
        "subscriptions/listen": listen,
        # No resources/subscribe: resourceSubscriptions of subscriptions/listen replace it.
        "resources/list": resources_list,
        "resources/templates/list": resources_templates_list,
        "resources/read": resources_read,
        "prompts/list": prompts_list,
        "prompts/get": prompts_get,
        "completion/complete": completion_complete,
    }
)
"""The requests the stateless era answers (2026-07-28)."""
