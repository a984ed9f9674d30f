"""OpenTelemetry: one span per tool call, when ``opentelemetry-api`` is installed.

The span follows the MCP semantic conventions of OpenTelemetry: kind SERVER,
named ``tools/call {tool}``, with ``mcp.method.name``, ``gen_ai.tool.name``,
``gen_ai.operation.name``, ``jsonrpc.request.id`` and ``mcp.session.id`` (in the
handshake era), and ``error.type`` when the call failed. Its parent
is the context the client sent in ``params._meta.traceparent`` (and
``tracestate``), extracted with the globally configured propagator (W3C
trace context by default), so a client's trace continues into the server.

The span is current for the call's task, so spans the tool itself opens are
its children (pipeline stages run in child tasks, which inherit it).

Without ``opentelemetry-api`` this is a no-op costing one function call per
tool call; with the API but no SDK configured, the API's own no-op tracer
answers. The ``otel`` extra installs the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from flowkit.mcp import StartCall

__all__ = ["CallSpan", "call_span"]

try:
    from opentelemetry import propagate, trace
except ImportError:  # pragma: no cover - exercised where the extra is absent
    _tracer: Any = None
else:
    _tracer = trace.get_tracer("flowkit_http")


class CallSpan:
    """The span of one call; :meth:`ended` records how it ended."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def ended(self, outcome: str, kind: str | None) -> None:
        """Record the outcome (``ok``/``error``/``cancelled``/``crashed``)."""
        span = self._span
        if span is None:
            return
        span.set_attribute("flowkit.outcome", outcome)
        if outcome in ("error", "crashed"):
            span.set_attribute("error.type", kind or outcome)
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        elif outcome == "cancelled":
            span.set_attribute("error.type", "cancelled")


_NO_SPAN = CallSpan(None)


def _no_provider() -> bool:
    """No tracer provider is set (the API's proxy answers): spans record nothing."""
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


_UNTRACED = nullcontext(_NO_SPAN)  # a call with no span: one shared, stateless manager


def call_span(action: StartCall) -> AbstractContextManager[CallSpan]:
    """The span around running ``action`` (a no-op without OpenTelemetry).

    With the API but no tracer provider configured, a call without a client
    trace context gets no span at all: the API's no-op tracer would only make
    the invalid span current (which is what the tool sees anyway), at ~2 KiB
    held per open call and a few µs of context managers per call. A client's
    ``traceparent`` still goes through the no-op tracer, so the tool's context
    carries the client's trace onward without an SDK. The untraced case is a
    shared object, not a generator per call (~0.4 KiB per open call).
    """
    if _tracer is None or (not action.trace_context and _no_provider()):
        return _UNTRACED
    return _traced(action)


@contextmanager
def _traced(action: StartCall) -> Iterator[CallSpan]:
    assert _tracer is not None
    stream = action.stream
    attributes: dict[str, Any] = {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": action.tool.name,
        "gen_ai.operation.name": "execute_tool",
        "jsonrpc.request.id": str(action.request_id),
        "network.transport": "tcp",
    }
    if stream.session_id is not None:
        attributes["mcp.session.id"] = stream.session_id
    parent = propagate.extract(action.trace_context) if action.trace_context else None
    with _tracer.start_as_current_span(
        f"tools/call {action.tool.name}",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield CallSpan(span)
