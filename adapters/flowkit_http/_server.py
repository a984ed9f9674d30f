"""The server object users declare tools, resources and prompts on.

:class:`MCPServer` holds a :class:`flowkit.mcp.ToolSet` (the tools), a
:class:`~flowkit.mcp.ResourceSet` and a :class:`~flowkit.mcp.PromptSet`, plus
the endpoint's configuration and the HTTP-side stream settings. It performs no
I/O: :class:`~flowkit_http.MCPApp` (bare ASGI), :func:`~flowkit_http.mount`
(into a Quart app) and ``flowkit serve`` turn it into a running endpoint.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import trio

from flowkit.mcp import (
    Endpoint,
    EndpointConfig,
    EventStore,
    Prompt,
    PromptSet,
    Resource,
    ResourceSet,
    ResourceTemplate,
    Tool,
    ToolSet,
)

from ._live import LiveResource
from ._shared import SharedStoreOpener

__all__ = ["MCPServer", "StreamSettings"]

_F = TypeVar("_F", bound=Callable[..., Any])


@attrs.frozen
class StreamSettings:
    """How the HTTP adapter writes SSE streams.

    Attributes:
        keepalive_interval: the longest an open stream stays silent: one
            server-wide task checks every quarter interval and sends an SSE
            comment on each stream silent for 3/4 of it or more. Keep it
            below your proxy's read timeout (nginx ``proxy_read_timeout``
            defaults to 60 s).
        max_queued_events: per call, events that may wait for a slow client
            under the lossless policy before the tool's pipeline is paused.
        max_queued_logs: per call, log events kept for a slow client under
            the conflate policy (oldest dropped first).
        expiry_poll_interval: seconds between idle-session sweeps.
    """

    keepalive_interval: float = attrs.field(default=15.0, validator=attrs.validators.gt(0))
    max_queued_events: int = attrs.field(default=256, validator=attrs.validators.ge(1))
    max_queued_logs: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    expiry_poll_interval: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))


class MCPServer:
    """Tools, resources and prompts plus configuration: what an MCP endpoint serves.

    Example::

        server = MCPServer(name="demo")

        @server.tool()
        async def count(n: int):
            \"\"\"Count to n.\"\"\"
            for i in range(1, n + 1):
                yield i

        @server.resource("notes://{day}", mime_type="text/plain")
        def notes(day: str) -> str:
            return f"Nothing happened on {day}."

        @server.prompt()
        def review(code: str) -> str:
            \"\"\"Ask for a code review.\"\"\"
            return f"Please review:\\n{code}"

    Args:
        name: ``serverInfo.name``.
        version: ``serverInfo.version``.
        instructions: optional ``instructions`` for the model.
        config: a full :class:`~flowkit.mcp.EndpointConfig`; ``name``,
            ``version`` and ``instructions`` override its fields when given.
        settings: stream settings (keepalive, per-call queue bounds).
        event_store: where events are kept for resumption; bounded
            in-memory by default.
        shared: a store shared by several instances (e.g.
            ``flowkit_redis.RedisShared(url)``): sessions, running calls
            and events live there, so any instance serves any request
            (docs/scaling.md). ``None``: everything in this process.
        instance: this instance's name among those sharing the store (it
            prefixes stream ids); random by default.
    """

    def __init__(
        self,
        name: str = "flowkit",
        *,
        version: str | None = None,
        instructions: str | None = None,
        config: EndpointConfig | None = None,
        settings: StreamSettings | None = None,
        event_store: EventStore | None = None,
        shared: SharedStoreOpener | None = None,
        instance: str | None = None,
    ) -> None:
        config = config if config is not None else EndpointConfig()
        changes: dict[str, Any] = {"server_name": name}
        if version is not None:
            changes["server_version"] = version
        if instructions is not None:
            changes["instructions"] = instructions
        self.config = attrs.evolve(config, **changes)
        self.settings = settings if settings is not None else StreamSettings()
        self.tools = ToolSet()
        self.event_store = event_store
        self.shared = shared
        self.instance = instance if instance is not None else secrets.token_hex(4)
        #: Declare a tool: :meth:`flowkit.mcp.ToolSet.tool`, bare or with
        #: options. The function may be an async generator (each yielded
        #: item is a progress step), return a
        #: :class:`~flowkit_http.ToolPipeline`, or return the result directly.
        self.tool = self.tools.tool
        self.resources = ResourceSet()
        #: Declare a resource, or a resource template when the URI has
        #: ``{variables}``: :meth:`flowkit.mcp.ResourceSet.resource`.
        self.resource = self.resources.resource
        self.prompts = PromptSet()
        #: Declare a prompt: :meth:`flowkit.mcp.PromptSet.prompt`.
        self.prompt = self.prompts.prompt
        #: The streaming-native resources (:meth:`live_resource`), which the
        #: serving app runs.
        self.live_resources: list[LiveResource] = []

    def live_resource(
        self,
        uri: str,
        /,
        *,
        interval: float = 1.0,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        ttl_ms: int = 0,
    ) -> Callable[[_F], _F]:
        """Decorator declaring a resource whose contents are a pipeline's newest item.

        The function takes no arguments and returns the pipeline: its source
        (an async generator, say) or a :class:`~flowkit_http.ToolPipeline`.
        While the server serves, the pipeline runs; ``resources/read``
        returns its newest item, and subscribers get at most one
        ``notifications/resources/updated`` per ``interval`` seconds, the
        newest item conflated, never queued (:class:`LiveResource`). Its
        reads tell 2026-07-28 clients ``ttlMs: 0`` (re-fetch: the value
        changes any moment) unless ``ttl_ms`` says otherwise. The other
        options are those of :meth:`flowkit.mcp.ResourceSet.resource`; the
        name and description default to the function's.
        """

        def register(fn: _F) -> _F:
            live = LiveResource(uri, fn, interval=interval)
            self.resources.add(
                Resource(
                    uri,
                    name=name or fn.__name__,
                    fn=live.read,
                    title=title,
                    description=description or inspect.getdoc(fn),
                    mime_type=mime_type,
                    annotations=annotations,
                    ttl_ms=ttl_ms,
                )
            )
            self.live_resources.append(live)
            return fn

        return register

    @property
    def name(self) -> str:
        return self.config.server_name

    def add_tool(self, tool: Tool) -> Tool:
        """Register a ready :class:`~flowkit.mcp.Tool`."""
        return self.tools.add(tool)

    def add_resource(self, resource: Resource | ResourceTemplate) -> Resource | ResourceTemplate:
        """Register a ready :class:`~flowkit.mcp.Resource` or template."""
        return self.resources.add(resource)

    def add_prompt(self, prompt: Prompt) -> Prompt:
        """Register a ready :class:`~flowkit.mcp.Prompt`."""
        return self.prompts.add(prompt)

    def endpoint(self) -> Endpoint:
        """A new sans-IO endpoint for these tools, resources and prompts, on trio's clock.

        trio's clock (not ``time.monotonic``) so that session expiry follows
        ``MockClock`` in tests; it is only read while serving.
        """
        return Endpoint(
            self.config,
            self.tools,
            resources=self.resources,
            prompts=self.prompts,
            clock=trio.current_time,
            event_store=self.event_store,
            instance=self.instance if self.shared is not None else None,
        )
