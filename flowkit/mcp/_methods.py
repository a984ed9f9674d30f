"""The JSON-RPC methods an :class:`~flowkit.mcp.Endpoint` answers.

Each handler takes the request context and returns an action; the endpoint
routes to them through per-era tables (``method name -> handler``), so which
methods exist in which protocol revision is data, not branches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._actions import Action, OpenListenStream, Reply, StartCall, json_reply
from ._config import EndpointConfig
from ._content import error_result
from ._errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    RemoteProtocolError,
)
from ._events import EventStore
from ._headers import RequestHead
from ._jsonrpc import Request, RequestId
from ._sessions import LOG_LEVELS, Session, SessionRegistry
from ._stateless import META_PREFIX, RequestMeta, validate_param_headers
from ._stream import OutgoingStream
from ._tools import ToolSet
from ._versions import VersionPolicy, negotiate_version

__all__ = ["TOOLS_LIST_CHANGED", "_Ctx", "_Handler", "_Methods"]

TOOLS_LIST_CHANGED = "notifications/tools/list_changed"
# subscriptions/listen filter fields we can honour, and the capability behind each.
_SUBSCRIBABLE = {"toolsListChanged": "tools"}
# W3C trace context carried in params._meta (MCP semantic conventions).
_TRACE_KEYS = ("traceparent", "tracestate")


@attrs.frozen
class _Ctx:
    """One request being handled, in either era."""

    request: Request
    policy: VersionPolicy
    session: Session | None  # handshake era
    meta: RequestMeta | None  # stateless era
    head: RequestHead


_Handler = Callable[[_Ctx], Action]


def _params_error(message: str, request_id: RequestId) -> RemoteProtocolError:
    return RemoteProtocolError(message, http_status=200, code=INVALID_PARAMS, request_id=request_id)


def _progress_token(params: dict[str, Any], request_id: RequestId) -> str | int | None:
    meta = params.get("_meta")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise _params_error('"_meta" must be an object', request_id)
    token = meta.get("progressToken")
    if token is None:
        return None
    if isinstance(token, bool) or not isinstance(token, str | int):
        raise _params_error('"progressToken" must be a string or an integer', request_id)
    return token


def _trace_context(params: dict[str, Any]) -> dict[str, str]:
    """``traceparent``/``tracestate`` from ``params._meta`` (already checked to be an object)."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        return {}
    return {key: meta[key] for key in _TRACE_KEYS if isinstance(meta.get(key), str)}


class _Methods:
    """Request handlers, mixed into :class:`~flowkit.mcp.Endpoint`."""

    config: EndpointConfig
    tools: ToolSet
    sessions: SessionRegistry
    event_store: EventStore
    _clock: Callable[[], float]
    _subscriptions: dict[OutgoingStream, None]

    def _capabilities(self) -> dict[str, Any]:
        return {"tools": {"listChanged": self.config.tools_list_changed}, "logging": {}}

    def _complete(
        self, policy: VersionPolicy, result: dict[str, Any], *, cacheable: bool = False
    ) -> dict[str, Any]:
        """Add the stateless era's ``resultType`` and caching hints."""
        if policy.result_type:
            result["resultType"] = "complete"
            if cacheable:
                result["ttlMs"] = self.config.cache_ttl_ms
                result["cacheScope"] = self.config.cache_scope
        return result

    def _initialize(self, request: Request, principal: str | None) -> Reply:
        params = request.params
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise RemoteProtocolError(
                '"protocolVersion" must be a string',
                http_status=400,
                code=INVALID_PARAMS,
                request_id=request.id,
            )
        policy = negotiate_version(requested, self.config.versions)
        session = self.sessions.create(
            self._clock(),
            principal=principal,
            policy=policy,
            log_level=self.config.default_log_level,
            client_info=params.get("clientInfo"),
            client_capabilities=params.get("capabilities"),
        )
        result: dict[str, Any] = {
            "protocolVersion": policy.version,
            "capabilities": self._capabilities(),
            "serverInfo": self.config.server_info(),
        }
        if self.config.instructions is not None:
            result["instructions"] = self.config.instructions
        return json_reply(request.id, result, ((b"mcp-session-id", session.id.encode("ascii")),))

    def _ping(self, ctx: _Ctx) -> Action:
        return json_reply(ctx.request.id, {})

    def _discover(self, ctx: _Ctx) -> Action:
        result: dict[str, Any] = {
            "supportedVersions": sorted(self.config.versions, reverse=True),
            "capabilities": self._capabilities(),
            "_meta": {META_PREFIX + "serverInfo": self.config.server_info()},
        }
        if self.config.instructions is not None:
            result["instructions"] = self.config.instructions
        return json_reply(ctx.request.id, self._complete(ctx.policy, result, cacheable=True))

    def _tools_list(self, ctx: _Ctx) -> Action:
        cursor = ctx.request.params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise _params_error("Invalid cursor", ctx.request.id)
        page, next_cursor = self.tools.page(cursor, self.config.page_size)
        result: dict[str, Any] = {"tools": [tool.to_json() for tool in page]}
        if next_cursor is not None:
            result["nextCursor"] = next_cursor
        return json_reply(ctx.request.id, self._complete(ctx.policy, result, cacheable=True))

    def _set_level(self, ctx: _Ctx) -> Action:
        assert ctx.session is not None
        level = ctx.request.params.get("level")
        if not isinstance(level, str) or level not in LOG_LEVELS:
            raise _params_error(f"Invalid log level: {level!r}", ctx.request.id)
        ctx.session.log_level = LOG_LEVELS[level]
        return json_reply(ctx.request.id, {})

    def _tools_call(self, ctx: _Ctx) -> Action:
        request, session, policy = ctx.request, ctx.session, ctx.policy
        params = request.params
        name = params.get("name")
        if not isinstance(name, str):
            raise _params_error('"name" must be a string', request.id)
        tool = self.tools.get(name)
        if tool is None:
            raise _params_error(f"Unknown tool: {name}", request.id)
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise _params_error('"arguments" must be an object', request.id)
        if policy.method_headers:
            validate_param_headers(ctx.head, tool, arguments, request.id)
        declared = (
            ctx.meta.client_capabilities
            if ctx.meta
            else getattr(session, "client_capabilities", None)
        )
        missing = tool.missing_capabilities(declared)
        if missing:
            raise RemoteProtocolError(
                f"Tool {name!r} requires client capabilities: {', '.join(sorted(missing))}",
                http_status=policy.capability_error_status,
                code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                data={"requiredCapabilities": missing},
                request_id=request.id,
            )
        token = ctx.meta.progress_token if ctx.meta else _progress_token(params, request.id)
        if session is not None and request.id in session.in_flight:
            raise RemoteProtocolError(
                f"Request id {request.id!r} is already in flight in this session",
                http_status=200,
                code=INVALID_REQUEST,
                request_id=request.id,
            )
        problem = tool.validate_arguments(arguments)
        if problem is not None:
            # A tool execution error, not a protocol error: the model can read
            # it and retry ("Error Handling", 2025-11-25 tools).
            return json_reply(request.id, self._complete(policy, error_result(problem)))
        stream = OutgoingStream(
            kind="call",
            stream_id=session.new_stream_id() if session is not None else "0",
            session=session,
            request_id=request.id,
            progress_token=token,
            tool=tool,
            store=self.event_store if policy.resumable else None,
            retry_ms=self.config.sse_retry_ms,
            log_level=ctx.meta.log_level if ctx.meta else None,
            result_type=policy.result_type,
            disconnect_cancels=policy.disconnect_cancels,
            on_done=self._call_done if session is not None else None,
        )
        if session is not None:
            session.in_flight[request.id] = stream
        return StartCall(
            stream.session_id,
            request.id,
            tool,
            arguments,
            token,
            stream,
            _trace_context(params),
        )

    def _listen(self, ctx: _Ctx) -> Action:
        """``subscriptions/listen``: a long-lived stream of change notifications.

        The acknowledgement (the stream's first event) reports the subset of
        the requested filter we honour; we never send a type not in it.
        """
        request = ctx.request
        wanted = request.params.get("notifications")
        if not isinstance(wanted, dict):
            raise _params_error('"notifications" must be an object', request.id)
        capabilities = self._capabilities()
        agreed = {
            field: True
            for field, capability in _SUBSCRIBABLE.items()
            if wanted.get(field) is True and capabilities.get(capability, {}).get("listChanged")
        }
        stream = OutgoingStream(
            kind="listen",
            stream_id="0",
            session=None,
            request_id=request.id,
            subscription=agreed,
        )
        self._subscriptions[stream] = None
        return OpenListenStream(None, stream)

    def _call_done(self, stream: OutgoingStream) -> None:
        session = self.sessions.get_any(stream.session_id) if stream.session_id else None
        if session is None:
            return
        assert stream.request_id is not None
        if session.in_flight.get(stream.request_id) is stream:
            del session.in_flight[stream.request_id]
            # Idle time starts now, not at the request that started the call.
            self.sessions.touch(session, self._clock())
