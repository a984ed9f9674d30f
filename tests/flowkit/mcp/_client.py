"""Test helpers: a fake clock, deterministic ids and a tiny synchronous client."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from flowkit.mcp import (
    Action,
    Endpoint,
    EndpointConfig,
    Reply,
    ServerSentEvent,
    SSEDecoder,
    StartCall,
    ToolSet,
)

ACCEPT_BOTH = b"application/json, text/event-stream"


class FakeClock:
    """A settable monotonic clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def counter_ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"session-{next(counter)}"


def make_tools() -> ToolSet:
    tools = ToolSet()

    @tools.tool
    async def count(n: int, label: str = "item") -> AsyncIterator[int]:
        """Count from 1 to n."""
        for i in range(1, n + 1):
            yield i

    @tools.tool(
        output_schema={
            "type": "object",
            "properties": {"sum": {"type": "number"}},
            "required": ["sum"],
        }
    )
    def add(a: float, b: float) -> dict[str, float]:
        """Add two numbers."""
        return {"sum": a + b}

    return tools


def make_endpoint(
    config: EndpointConfig | None = None, clock: FakeClock | None = None, **kwargs: Any
) -> Endpoint:
    return Endpoint(
        config or EndpointConfig(),
        kwargs.pop("tools", None) or make_tools(),
        clock=clock or FakeClock(),
        new_session_id=kwargs.pop("new_session_id", None) or counter_ids(),
        **kwargs,
    )


def body_json(reply: Reply) -> Any:
    return orjson.loads(reply.body)


def sse_data(event: bytes) -> Any:
    """The JSON in one encoded SSE event, read back by the core's decoder."""
    decoder = SSEDecoder()
    decoder.receive_data(event)
    decoded = list(decoder)
    assert not decoder.mid_event, event
    assert len(decoded) == 1, decoded
    assert isinstance(decoded[0], ServerSentEvent), decoded
    return orjson.loads(decoded[0].data)


class Client:
    """Drives an Endpoint the way a well-behaved MCP client would."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        principal: str | None = None,
        version: str = "2025-11-25",
    ) -> None:
        self.endpoint = endpoint
        self.principal = principal
        self.version = version
        self.session_id: str | None = None
        self._ids = itertools.count(1)

    def headers(self, extra: Sequence[tuple[bytes, bytes]] = ()) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"host", b"localhost:8000"),
            (b"accept", ACCEPT_BOTH),
            (b"content-type", b"application/json"),
        ]
        if self.session_id is not None:
            headers.append((b"mcp-session-id", self.session_id.encode()))
            headers.append((b"mcp-protocol-version", self.version.encode()))
        return headers + list(extra)

    def post(self, message: Any, extra: Sequence[tuple[bytes, bytes]] = ()) -> Action:
        body = message if isinstance(message, bytes) else orjson.dumps(message)
        return self.endpoint.receive_request("POST", self.headers(extra), body, self.principal)

    def request(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Action:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": kw.pop("id", next(self._ids))}
        message["method"] = method
        if params is not None:
            message["params"] = params
        return self.post(message, **kw)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> Action:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        return self.post(message)

    def initialize(self, version: str | None = None) -> Reply:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": version or self.version,
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        )
        assert isinstance(reply, Reply), reply
        if reply.status == 200:
            self.session_id = dict(reply.headers)[b"mcp-session-id"].decode()
            self.version = body_json(reply)["result"]["protocolVersion"]
            assert self.notify("notifications/initialized") == Reply(202)
        return reply

    def call(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        id: Any = None,
        progress_token: Any = None,
    ) -> Action:
        params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
        if progress_token is not None:
            params["_meta"] = {"progressToken": progress_token}
        if id is None:
            return self.request("tools/call", params)
        return self.request("tools/call", params, id=id)

    def start(
        self, name: str = "count", arguments: dict[str, Any] | None = None, **kw: Any
    ) -> StartCall:
        action = self.call(name, arguments if arguments is not None else {"n": 3}, **kw)
        assert isinstance(action, StartCall), action
        return action

    def get(
        self, last_event_id: bytes | None = None, accept: bytes = b"text/event-stream"
    ) -> Action:
        headers = [h for h in self.headers() if h[0] not in (b"accept", b"content-type")]
        headers.append((b"accept", accept))
        if last_event_id is not None:
            headers.append((b"last-event-id", last_event_id))
        return self.endpoint.receive_request("GET", headers, b"", self.principal)

    def delete(self) -> Action:
        return self.endpoint.receive_request("DELETE", self.headers(), b"", self.principal)
