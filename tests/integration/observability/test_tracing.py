"""Issue 14, item 7: an OpenTelemetry span per tool call, parented by ``_meta.traceparent``.

The SDK (a dev dependency) records spans in memory; the span follows the MCP
semantic conventions. Without ``opentelemetry`` installed the adapter still
serves calls (checked in a subprocess where the import fails).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, Sampler, SamplingResult

from flowkit_http import MCPServer

from ._app import observed, run_call, session

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class _Switch(Sampler):
    """Records spans only during this module's tests.

    OpenTelemetry allows one global tracer provider per process: once set, it
    stays for the rest of the run, and recording every later test's calls
    would grow the heap (the reliability suite measures it).
    """

    def __init__(self) -> None:
        self.on = False

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return ALWAYS_ON.should_sample(*args, **kwargs) if self.on else _DROP

    def get_description(self) -> str:
        return "on only inside tests/integration/observability/test_tracing.py"


_DROP = SamplingResult(Decision.DROP)
_EXPORTER = InMemorySpanExporter()
_SWITCH = _Switch()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans recorded during one test (the process's tracer provider, set once)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(sampler=_SWITCH)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    _SWITCH.on = True
    try:
        yield _EXPORTER
    finally:
        _SWITCH.on = False
        _EXPORTER.clear()


def _server() -> MCPServer:
    server = MCPServer(name="traced")

    @server.tool
    async def work(steps: int) -> AsyncIterator[int]:
        """Open a span of its own in the middle of the call."""
        with trace.get_tracer("tool").start_as_current_span("inner"):
            for i in range(steps):
                await trio.lowlevel.checkpoint()
                yield i

    @server.tool
    def fail() -> str:
        """Always fails."""
        raise ValueError("no")

    return server


def _one(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in spans.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in spans.get_finished_spans()]
    return found[0]


async def test_a_call_span_continues_the_clients_trace(spans: InMemorySpanExporter) -> None:
    async with observed(_server()) as (_base, client, _probe):
        headers = await session(client)
        await run_call(client, headers, 1, "work", {"steps": 3}, meta={"traceparent": TRACEPARENT})
    span = _one(spans, "tools/call work")
    assert span.kind == trace.SpanKind.SERVER
    assert span.context is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.parent.is_remote
    attributes = dict(span.attributes or {})
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["gen_ai.tool.name"] == "work"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["jsonrpc.request.id"] == "1"
    assert attributes["mcp.session.id"] == headers["mcp-session-id"]
    assert attributes["flowkit.outcome"] == "ok"
    assert span.status.status_code == trace.StatusCode.UNSET
    # The call's span is current while the tool runs: the tool's own span is its child.
    inner = _one(spans, "inner")
    assert inner.parent is not None
    assert inner.parent.span_id == span.context.span_id


async def test_without_traceparent_the_call_starts_a_trace(spans: InMemorySpanExporter) -> None:
    async with observed(_server()) as (_base, client, _probe):
        headers = await session(client)
        await run_call(client, headers, 1, "work", {"steps": 1})
        await run_call(client, headers, 2, "work", {"steps": 1}, meta={"traceparent": "junk"})
    roots = [s for s in spans.get_finished_spans() if s.name == "tools/call work"]
    assert len(roots) == 2
    assert all(s.parent is None for s in roots)  # a malformed traceparent is ignored
    assert roots[0].context is not None
    assert format(roots[0].context.trace_id, "032x") != TRACE_ID


async def test_a_failed_call_marks_its_span(spans: InMemorySpanExporter) -> None:
    async with observed(_server()) as (_base, client, _probe):
        headers = await session(client)
        await run_call(client, headers, 1, "fail", {})
    span = _one(spans, "tools/call fail")
    assert span.status.status_code == trace.StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ValueError"
    # The message (which may quote arguments) is not recorded.
    assert "no" not in str(span.status.description or "")
    assert not span.events


_WITHOUT_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # import opentelemetry now fails
import httpx, trio
from flowkit_http import MCPApp, MCPServer, _tracing
from tests.integration.http._raw import call, initialize

assert _tracing._tracer is None
server = MCPServer()

@server.tool
def hello(name: str) -> str:
    \"\"\"Greet.\"\"\"
    return f"hello {name}"

async def main():
    app = MCPApp(server)
    async with app.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            headers = await initialize(c, "http://127.0.0.1/mcp")
            r = await c.post("/mcp", content=call(1, "hello", {"name": "otel-free"}), headers=headers)
            print(r.status_code, "hello otel-free" in r.text)

trio.run(main)
"""


def test_without_opentelemetry_calls_still_run() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OTEL], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "True"], done.stdout + done.stderr


_NO_PROVIDER = """
import httpx, trio
from opentelemetry import context, trace
from flowkit_http import MCPApp, MCPServer
from tests.integration.http._raw import call, initialize, request

attached = []
_attach = context.attach
def spy(ctx):  # the real attach, counted: a span made current attaches a context
    attached.append(ctx)
    return _attach(ctx)
context.attach = spy
server = MCPServer()
seen = []

@server.tool
def where() -> str:
    \"\"\"Report the current span.\"\"\"
    span = trace.get_current_span()
    seen.append((span is trace.INVALID_SPAN, format(span.get_span_context().trace_id, "032x")))
    return "ok"

async def main():
    app = MCPApp(server)
    async with app.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            headers = await initialize(c, "http://127.0.0.1/mcp")
            await c.post("/mcp", content=call(1, "where", {}), headers=headers)
            print(len(attached), *seen[0])
            traced = request(
                "tools/call", id=2, name="where", arguments={}, _meta={"traceparent": "TRACEPARENT"}
            )
            await c.post("/mcp", content=traced, headers=headers)
            print(len(attached) > 0, *seen[1])

trio.run(main)
""".replace("TRACEPARENT", TRACEPARENT)


def test_without_a_tracer_provider_an_untraced_call_makes_no_span() -> None:
    """The API alone and no client trace: no span is made current (issue 19: ~2 KiB per
    open call); a client's traceparent still reaches the tool through the no-op tracer."""
    done = subprocess.run(
        [sys.executable, "-c", _NO_PROVIDER], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    untraced, traced = done.stdout.splitlines()
    assert untraced.split() == ["0", "True", "0" * 32]
    assert traced.split() == ["True", "False", TRACE_ID]
