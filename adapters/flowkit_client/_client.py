"""The MCP client: negotiation, requests, and the reading of their replies.

One :class:`Client` speaks one protocol revision, chosen at connection:
``server/discover`` first (the 2026-07-28 era, stateless) when ``era`` is
``"auto"``, else, or when the server does not know it, the 2025-11-25
``initialize`` handshake. What differs between the two is read from the
core's :data:`flowkit.mcp.VERSIONS` policy of that revision (sessions,
per-request ``_meta``, mirrored headers, resumability, whether a closed
stream cancels), never from comparing version strings.

A request's reply is read by :meth:`Client._exchange`: the response
messages in order, notifications handed to the caller, requests from the
server (elicitation, sampling, roots, ping) answered through the callbacks,
up to the response with the request's id. When the stream of a resumable
revision ends without that response (a proxy cut it, or the server closed
it on purpose, "SSE polling"), it is resumed with ``GET`` and
``Last-Event-ID`` after the backoff of :class:`~flowkit_client.RetryPolicy`;
the decoder never delivers an event the cut split, and the server replays
from the last whole one, so each event arrives once, in order.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import trio

from flowkit import ungrouped
from flowkit.mcp import (
    INTERNAL_ERROR,
    LATEST_HANDSHAKE_VERSION,
    METHOD_NOT_FOUND,
    UNSUPPORTED_PROTOCOL_VERSION,
    VERSIONS,
    Notification,
    Request,
    Response,
    VersionPolicy,
    encode_error,
    encode_notification,
    encode_result,
    header_params,
)

from ._events import ServerInfo, ToolInfo, ToolResult
from ._exceptions import (
    ClientError,
    HTTPStatusError,
    ProtocolError,
    ResumeFailed,
    RPCError,
    StreamCut,
    TransportError,
)
from ._policy import RetryPolicy, Timeouts
from ._transport import Body, Transport, dumps

if TYPE_CHECKING:
    from ._call import ToolCall

__all__ = ["Client", "Handler", "open_client"]

META = "io.modelcontextprotocol/"
MODERN_VERSION = max(v for v, policy in VERSIONS.items() if policy.request_meta)

Handler: TypeAlias = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
"""A callback for a request from the server: its ``params`` in, its result out."""

Deliver: TypeAlias = Callable[[Notification], Awaitable[None]]

_CANCEL_GRACE = 5.0  # seconds to send notifications/cancelled while being cancelled


def _header_value(text: str) -> str:
    """``text`` as a header value: as is if visible ASCII, else ``=?base64?...?=``."""
    if text.isascii() and text.isprintable() and text == text.strip():
        return text
    return "=?base64?" + base64.b64encode(text.encode()).decode("ascii") + "?="


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _header_value(str(value))


class _Resumption:
    """Where a reply stream stands, for resuming it: the last event id and ``retry``."""

    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry_ms: int | None = None
        self.delivered = 0  # messages read since the last (re)connection

    def note(self, body: Body) -> None:
        if body.decoder is not None:
            self.last_event_id = body.decoder.last_event_id or self.last_event_id
            self.retry_ms = body.decoder.retry if body.decoder.retry is not None else self.retry_ms


class Client:
    """A connection to one MCP endpoint; make one with :func:`open_client`.

    Attributes:
        server: what negotiation learnt (revision, capabilities, name).
        policy: the core's policy row of the revision in force.
    """

    server: ServerInfo
    policy: VersionPolicy

    def __init__(
        self,
        transport: Transport,
        nursery: trio.Nursery,
        *,
        retry: RetryPolicy,
        log_level: str | None,
        handlers: Mapping[str, Handler],
        client_info: Mapping[str, str],
        rng: random.Random,
    ) -> None:
        self._transport = transport
        self._nursery = nursery
        self._retry = retry
        self._log_level = log_level
        self._handlers = dict(handlers)
        self._client_info = dict(client_info)
        self._rng = rng
        self._ids = itertools.count(1)
        self._session_id: str | None = None
        self._tools: dict[str, ToolInfo] = {}
        self._listed = False  # tools/list was read once (for Mcp-Param-* headers)

    # -- what every request carries -------------------------------------------------

    def _capabilities(self) -> dict[str, Any]:
        return {name.split("/")[0]: {} for name in self._handlers}

    def _headers(self, method: str | None, name: str | None = None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.policy.method_headers and method is not None:
            headers["mcp-method"] = method
            if name is not None:
                headers["mcp-name"] = _header_value(name)
        if self._session_id is not None:
            headers["mcp-session-id"] = self._session_id
        if not self.policy.handshake or self._session_id is not None:
            headers["mcp-protocol-version"] = self.policy.version
        return headers

    def _params(self, params: Mapping[str, Any] | None, token: int | None = None) -> dict[str, Any]:
        out = dict(params or {})
        meta: dict[str, Any] = dict(out.get("_meta") or {})
        if self.policy.request_meta:
            meta[META + "protocolVersion"] = self.policy.version
            meta[META + "clientCapabilities"] = self._capabilities()
            meta[META + "clientInfo"] = self._client_info
            if self._log_level is not None:
                meta[META + "logLevel"] = self._log_level
        if token is not None:
            meta["progressToken"] = token
        if meta:
            out["_meta"] = meta
        return out

    # -- negotiation ----------------------------------------------------------------

    async def _negotiate(self, era: str) -> None:
        if era != LATEST_HANDSHAKE_VERSION:
            self.policy = VERSIONS[MODERN_VERSION]
            try:
                found = await self._discover()
            except (RPCError, HTTPStatusError, ProtocolError):
                if era == MODERN_VERSION:
                    raise
            else:
                versions = found.get("supportedVersions") or []
                if self.policy.version in versions:
                    meta = found.get("_meta") or {}
                    info = found.get("serverInfo") or meta.get(META + "serverInfo") or {}
                    self.server = self._server_info(self.policy.version, found, info)
                    return
                if era == MODERN_VERSION:
                    raise ProtocolError(f"the server offers {versions}, not {MODERN_VERSION}")
        await self._handshake()

    async def _discover(self) -> Any:
        """``server/discover``, once more if refused with -32022 naming a version we speak.

        "Versioning" (2026-07-28): a server that does not serve the requested
        revision answers -32022 with ``data.supported``; the client should
        retry with one of those rather than give up on the era.
        """
        try:
            return await self.request("server/discover")
        except RPCError as exc:
            supported = exc.data.get("supported") if isinstance(exc.data, dict) else None
            ours = [
                v
                for v in supported or ()
                if isinstance(v, str) and v in VERSIONS and VERSIONS[v].request_meta
            ]
            if exc.code != UNSUPPORTED_PROTOCOL_VERSION or not ours:
                raise
            self.policy = VERSIONS[max(ours)]
            return await self.request("server/discover")

    def _server_info(self, version: str, result: Mapping[str, Any], info: Any) -> ServerInfo:
        info = info if isinstance(info, Mapping) else {}
        caps = result.get("capabilities")
        return ServerInfo(
            version,
            caps if isinstance(caps, Mapping) else {},
            str(info.get("name", "")),
            str(info.get("version", "")),
            result.get("instructions"),
        )

    async def _handshake(self) -> None:
        self.policy = VERSIONS[LATEST_HANDSHAKE_VERSION]
        params = {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": self._capabilities(),
            "clientInfo": self._client_info,
        }

        def session(body: Body) -> None:
            self._session_id = body.response.headers.get("mcp-session-id")

        result = await self._exchange("initialize", params, on_open=session)
        version = result.get("protocolVersion")
        policy = VERSIONS.get(version) if isinstance(version, str) else None
        if policy is None or not policy.handshake:
            raise ProtocolError(f"the server chose protocol version {version!r}, which we lack")
        self.policy = policy
        self.server = self._server_info(version, result, result.get("serverInfo"))
        await self.notify("notifications/initialized")
        if self._log_level is not None and "logging" in self.server.capabilities:
            await self.request("logging/setLevel", {"level": self._log_level})
        if self._handlers and self.policy.get_stream:
            await self._nursery.start(self._listen, name="flowkit_client listen stream")

    async def _listen(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Read the standalone GET stream, for server requests not tied to a call.

        Servers may send ``elicitation/create``, ``sampling/createMessage`` or
        ``roots/list`` there rather than on a call's stream (the TypeScript
        SDK does). Opened only when there is a callback to answer with; a
        server without the stream (405) or a dropped one simply ends it:
        nothing on it is a call's result. Negotiation waits until it is open
        (or refused), so a request the first call triggers finds it there.
        """
        try:
            async with self._transport.open("GET", self._headers(None), session=True) as reply:
                task_status.started()
                while reply is not None and (message := await reply.next_message()) is not None:
                    if isinstance(message, Request):
                        await self._answer(message)
        except ClientError:
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # started already
                task_status.started()

    async def _aclose(self) -> None:
        if self.policy.sessions and self._session_id is not None:
            with trio.move_on_after(_CANCEL_GRACE) as scope:
                scope.shield = True
                # 405: the server keeps sessions until they expire; or it is gone.
                with contextlib.suppress(ClientError):
                    async with self._transport.open("DELETE", self._headers(None)):
                        pass
        with trio.CancelScope(shield=True):
            await self._transport.aclose()

    # -- requests -------------------------------------------------------------------

    async def request(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its ``result`` (notifications on its stream are dropped).

        Raises:
            RPCError: the server answered with an error.
        """
        return await self._exchange(method, self._params(params))

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        """Send one notification."""
        body = encode_notification(method, dict(params) if params else None)
        async with self._transport.open(
            "POST", self._headers(method), body, session=self._session_id is not None
        ):
            pass

    async def ping(self) -> None:
        """Check that the server answers (2025-11-25 ``ping``; ``server/discover`` in 2026)."""
        await self.request("ping" if self.policy.handshake else "server/discover")

    async def list_tools(self) -> list[ToolInfo]:
        """Every tool the server offers, following ``nextCursor`` to the end."""
        tools: list[ToolInfo] = []
        cursor: str | None = None
        while True:
            result = await self.request("tools/list", {"cursor": cursor} if cursor else None)
            tools += [ToolInfo.from_json(t) for t in result.get("tools", []) if isinstance(t, dict)]
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str):
                break
        self._tools = {tool.name: tool for tool in tools}
        self._listed = True
        return tools

    def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> AbstractAsyncContextManager[ToolCall]:
        """Start a tool call: ``async with client.call_tool(name, args) as call:``.

        Iterate ``call`` for its events (:class:`~flowkit_client.Progress`,
        :class:`~flowkit_client.LogMessage`, then the
        :class:`~flowkit_client.ToolResult`) or ``await call.result()``.
        Leaving the block before the result cancels the call.

        Args:
            name: the tool.
            arguments: its arguments.
            timeout: seconds the whole call may take
                (:class:`~flowkit_client.CallTimeout`); ``None`` for no limit.
        """
        from ._call import ToolCall, open_call

        call = ToolCall(self, name, dict(arguments or {}), next(self._ids), timeout)
        return open_call(self._nursery, call)

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        # Not trio.fail_after at the caller: the reader enforces it, so the
        # server is told to stop and the error is a typed CallTimeout.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ToolResult:
        """Call a tool and return its result, ignoring the events on the way."""
        async with self.call_tool(name, arguments, timeout=timeout) as call:
            return await call.result()

    async def _call_headers(self, name: str, arguments: Mapping[str, Any]) -> dict[str, str]:
        """A ``tools/call``'s headers, with ``Mcp-Param-*`` for ``x-mcp-header`` arguments.

        The annotations are in the tool's input schema, so in an era with
        mirrored headers a call to a tool not seen yet lists the tools first
        (once per client): a call must not fail for want of a list the
        caller never needed.
        """
        headers = self._headers("tools/call", name)
        if not self.policy.method_headers:
            return headers
        if name not in self._tools and not self._listed:
            await self.list_tools()
        tool = self._tools.get(name)
        for param in header_params(name, tool.input_schema) if tool is not None else ():
            value: Any = arguments
            for key in param.path:
                value = value.get(key) if isinstance(value, Mapping) else None
            if value is not None:
                headers[param.header] = _param_text(value)
        return headers

    async def _cancel(self, request_id: int) -> None:
        """Tell a handshake-era server to stop a request (shielded: we may be cancelled)."""
        with trio.move_on_after(_CANCEL_GRACE) as scope:
            scope.shield = True
            # A server that is gone has ended the call anyway.
            with contextlib.suppress(ClientError):
                await self.notify(
                    "notifications/cancelled",
                    {"requestId": request_id, "reason": "cancelled by the client"},
                )

    # -- reading replies --------------------------------------------------------------

    async def _exchange(
        self,
        method: str,
        params: dict[str, Any],
        *,
        request_id: int | None = None,
        headers: Mapping[str, str] | None = None,
        deliver: Deliver | None = None,
        on_open: Callable[[Body], None] | None = None,
    ) -> Any:
        """Send a request and read its reply stream to the response; return its result."""
        rid = next(self._ids) if request_id is None else request_id
        body = dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        state = _Resumption()
        session = self._session_id is not None
        cause: ClientError | None = None
        async with self._transport.open(
            "POST", headers or self._headers(method), body, session=session
        ) as reply:
            if reply is None:
                raise ProtocolError(f"the server answered {method} with no response")
            if on_open is not None:
                on_open(reply)
            try:
                found, result = await self._read(reply, rid, state, deliver)
            except TransportError as exc:
                found, result, cause = False, None, exc
        attempt = 0
        while not found:
            if not self.policy.resumable or not state.last_event_id:
                raise StreamCut(f"the {method} stream ended before its response") from cause
            if attempt >= self._retry.max_attempts:
                raise ResumeFailed(
                    f"the {method} stream could not be resumed after {attempt} attempts"
                ) from cause
            await trio.sleep(self._retry.delay(attempt, state.retry_ms, self._rng))
            state.delivered = 0
            resume = {**self._headers(None), "last-event-id": state.last_event_id}
            try:
                async with self._transport.open("GET", resume, session=True) as reply:
                    if reply is None:
                        raise ProtocolError("the server answered a resumption with no stream")
                    found, result = await self._read(reply, rid, state, deliver)
            except (TransportError, HTTPStatusError) as exc:
                cause = exc
            attempt = 0 if state.delivered else attempt + 1
        return result

    async def _read(
        self, reply: Body, rid: int, state: _Resumption, deliver: Deliver | None
    ) -> tuple[bool, Any]:
        """Read until the response to ``rid``: ``(True, result)``, or ``(False, None)`` if cut."""
        try:
            while (message := await reply.next_message()) is not None:
                state.note(reply)
                state.delivered += 1
                if isinstance(message, Response):
                    if message.id != rid:
                        continue  # not ours (a stray answer): nothing to do with it
                    if message.error is not None:
                        error = message.error if isinstance(message.error, dict) else {}
                        raise RPCError(
                            int(error.get("code", INTERNAL_ERROR)),
                            str(error.get("message", "")),
                            error.get("data"),
                        )
                    return True, message.result
                if isinstance(message, Request):
                    await self._answer(message)
                elif deliver is not None:
                    await deliver(message)
        finally:
            state.note(reply)
        return False, None

    def _next_id(self) -> int:
        return next(self._ids)

    async def _fulfil(self, requests: Mapping[str, Any]) -> dict[str, Any]:
        """Answer an ``input_required`` result's ``inputRequests`` through the callbacks."""
        responses: dict[str, Any] = {}
        for key, request in requests.items():
            method = request.get("method") if isinstance(request, dict) else None
            handler = self._handlers.get(method) if isinstance(method, str) else None
            if handler is None:
                raise ProtocolError(f"the server needs {method!r}, and no callback answers it")
            params = request.get("params")
            responses[key] = dict(await handler(params if isinstance(params, dict) else {}))
        return responses

    async def _answer(self, request: Request) -> None:
        """Answer a request from the server through its callback, by POST."""
        handler = self._handlers.get(request.method)
        if request.method == "ping":
            body = encode_result(request.id, {})
        elif handler is None:
            body = encode_error(request.id, METHOD_NOT_FOUND, f"Method not found: {request.method}")
        else:
            try:
                body = encode_result(request.id, dict(await handler(request.params)))
            except Exception as exc:  # the callback's failure is the server's answer
                body = encode_error(request.id, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        async with self._transport.open(
            "POST", self._headers(None), body, session=self._session_id is not None
        ):
            pass


@asynccontextmanager
async def open_client(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeouts: Timeouts | None = None,
    retry: RetryPolicy | None = None,
    era: Literal["auto", "2026-07-28", "2025-11-25"] = "auto",
    log_level: str | None = "info",
    on_elicitation: Handler | None = None,
    on_sampling: Handler | None = None,
    on_roots: Handler | None = None,
    client_info: Mapping[str, str] | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Client]:
    """Connect to an MCP endpoint and negotiate; disconnect (DELETE the session) at the end.

    Args:
        url: the endpoint, e.g. ``http://127.0.0.1:8000/mcp``.
        headers: sent with every request, e.g. ``{"Authorization": "Bearer ..."}``.
        timeouts: connect/read/write deadlines (default :class:`Timeouts`).
        retry: how a dropped 2025-11-25 stream is resumed (default :class:`RetryPolicy`).
        era: ``"auto"`` (``server/discover``, else the handshake) or one revision.
        log_level: the least severe log level to receive (logs carry
            partial results): ``logging/setLevel`` after the handshake, the
            ``logLevel`` of every request's ``_meta`` in 2026-07-28. ``None``
            asks for none (a 2025-11-25 server then applies its default).
        on_elicitation: answers ``elicitation/create`` (params in, result out,
            e.g. ``{"action": "accept", "content": {...}}``).
        on_sampling: answers ``sampling/createMessage``.
        on_roots: answers ``roots/list`` (``{"roots": [...]}``).
        client_info: ``clientInfo`` (``name``, ``version``).
        rng: the random source of the backoff jitter (seed it in tests).
    """
    handlers = {
        method: handler
        for method, handler in (
            ("elicitation/create", on_elicitation),
            ("sampling/createMessage", on_sampling),
            ("roots/list", on_roots),
        )
        if handler is not None
    }
    transport = Transport(url, headers or {}, timeouts or Timeouts())
    with ungrouped():
        async with trio.open_nursery() as nursery:
            client = Client(
                transport,
                nursery,
                retry=retry or RetryPolicy(),
                log_level=log_level,
                handlers=handlers,
                client_info=client_info or {"name": "flowkit-client", "version": "0.1.0"},
                rng=rng or random.Random(),
            )
            try:
                await client._negotiate(era)
                yield client
            finally:
                if hasattr(client, "policy"):
                    await client._aclose()
                else:
                    await transport.aclose()
                nursery.cancel_scope.cancel()
