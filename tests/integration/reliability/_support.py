"""Helpers of the reliability suite, on top of ``tests/integration/http``'s server and raw client.

* :class:`TaskCounter`: live trio tasks, counted by a ``trio.abc.Instrument``;
* :func:`traced_memory`: Python heap in use (tracemalloc) after a full collection;
* :func:`eventually`: wait (bounded by the caller's ``fail_after``) for a condition;
* :func:`make_reliability_server`: ``tests/integration/http``'s test server plus pipeline tools
  that run forever or fail mid-stream, with a config of the test's choosing;
* :func:`flowkit_serving`: serve an app in-process as ``flowkit serve`` does
  (``flowkit_http._serve``: its accept loop, request gate and limits);
* :func:`open_fds`: this process's open file descriptors;
* :func:`flowkit_serve_process`: ``flowkit serve`` as a subprocess (optionally
  under a low ``RLIMIT_NOFILE``), its output collected.
"""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
from hypercorn.config import Config

import flowkit
from flowkit.mcp import EndpointConfig
from flowkit_http import MCPApp, MCPServer, Progress, StreamSettings, ToolPipeline
from flowkit_http._serve import ServeLimits, serve

from ..http._tools import Probe, make_server


class TaskCounter(trio.abc.Instrument):
    """The trio tasks spawned since the instrument was added and still alive."""

    def __init__(self) -> None:
        self.live: set[trio.lowlevel.Task] = set()
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.live.add(task)
        self.spawned += 1

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.live.discard(task)

    def __len__(self) -> int:
        return len(self.live)

    def names(self) -> list[str]:
        return sorted(task.name for task in self.live)


@contextmanager
def counting_tasks() -> Iterator[TaskCounter]:
    counter = TaskCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        yield counter
    finally:
        trio.lowlevel.remove_instrument(counter)


def traced_memory() -> int:
    """Bytes of Python heap traced now (tracemalloc must be running), after gc."""
    gc.collect()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@contextmanager
def tracing_memory() -> Iterator[None]:
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        yield
    finally:
        if not already:
            tracemalloc.stop()


async def eventually(condition: Callable[[], bool], poll: float = 0.01) -> None:
    """Return once ``condition()`` holds; the caller's ``fail_after`` bounds the wait."""
    while not condition():  # noqa: ASYNC110 -- the condition has no event to wait on
        await trio.sleep(poll)


@attrs.define
class FaultProbe:
    """Counts what the reliability tools did."""

    calls: int = 0
    failures: int = 0
    gate: trio.Event = attrs.Factory(trio.Event)


def make_reliability_server(
    config: EndpointConfig | None = None,
    *,
    keepalive: float = 15.0,
    max_queued_events: int = 256,
    max_queued_logs: int = 64,
) -> tuple[MCPServer, Probe, FaultProbe]:
    """``tests/integration/http``'s test server (demo tools, ``forever``, ``quiet``, ``boom``, ``chatty``)
    plus ``pipeline_forever`` (a multi-stage flowkit pipeline that never ends),
    ``faulty`` (a pipeline stage raising mid-stream) and ``gated`` (emits one
    progress step, then waits for the test to open its gate)."""
    server, probe = make_server(
        keepalive=keepalive, max_queued_events=max_queued_events, max_queued_logs=max_queued_logs
    )
    if config is not None:
        server.config = attrs.evolve(config, server_name=server.config.server_name)
    faults = FaultProbe()

    async def naturals(interval_ms: int) -> AsyncIterator[int]:
        i = 0
        while True:
            i += 1
            yield i
            await trio.sleep(interval_ms / 1000)

    @server.tool
    def pipeline_forever(interval_ms: int = 2) -> ToolPipeline:
        """An endless source through map, buffer and map stages."""
        return ToolPipeline(
            naturals(interval_ms),
            flowkit.map(lambda x: x * 2),
            flowkit.buffer(8),
            flowkit.map(lambda x: f"item {x}"),
        )

    def explode(x: int, after: int) -> int:
        if x == after:
            faults.failures += 1
            raise ValueError(f"stage failed on item {x}")
        return x

    @server.tool
    def faulty(after: int = 5, interval_ms: int = 1) -> ToolPipeline:
        """A pipeline whose middle stage raises on item ``after``."""
        faults.calls += 1

        async def source() -> AsyncIterator[int]:
            for i in range(1, after + 1000):
                yield i
                await trio.sleep(interval_ms / 1000)

        return ToolPipeline(
            source(), flowkit.map(lambda x: explode(x, after)), flowkit.map(lambda x: x)
        )

    @server.tool
    async def gated() -> AsyncIterator[Progress | dict[str, Any]]:
        """One progress step, then wait for the test to open the gate."""
        yield Progress("before the gate")
        await faults.gate.wait()
        yield Progress("after the gate")

    return server, probe, faults


def app_for(server: MCPServer, settings: StreamSettings | None = None) -> MCPApp:
    return MCPApp(server, settings=settings)


def live_state(app: MCPApp) -> dict[str, int]:
    """What the adapter and core hold right now (all zero when nothing is left)."""
    store = app.endpoint.event_store
    return {
        "calls": len(app._calls),
        "responses": len(app._responses),
        "listeners": len(app._listeners),
        "sessions": len(app.endpoint.sessions),
        "in_flight": sum(len(s.in_flight) for s in app.endpoint.sessions),
        "stored_events": len(store) if hasattr(store, "__len__") else 0,
    }


def request_head(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    *,
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{method} {path} {version}"] + [f"{name}: {value}" for name, value in headers]
    return "\r\n".join(lines).encode("latin-1")


@asynccontextmanager
async def flowkit_serving(
    app: Any,
    limits: ServeLimits | None = None,
    *,
    graceful_timeout: float = 2.0,
    app_queue: int | None = None,
) -> AsyncIterator[str]:
    """Serve ``app`` as ``flowkit serve`` does (its accept loop, gate and limits)
    until the block ends; yields the base URL. ``app_queue`` sets hypercorn's
    ``max_app_queue_size`` (body chunks queued ahead of the app)."""
    config = Config()
    if app_queue is not None:
        config.max_app_queue_size = app_queue
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve(
                app, config, limits=limits, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        try:
            yield binds[0]
        finally:
            stop.set()


def open_fds() -> int:
    """File descriptors this process has open now."""
    return len(os.listdir("/proc/self/fd"))


# ``flowkit serve`` in a subprocess, its log records showing their level; with
# FLOWKIT_TEST_NOFILE set, under that RLIMIT_NOFILE.
_SERVE_MAIN = (
    "import logging, os, resource, sys\n"
    "limit = os.environ.get('FLOWKIT_TEST_NOFILE')\n"
    "if limit:\n"
    "    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limit), int(limit)))\n"
    "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')\n"
    "from flowkit_http._cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.define
class ServeProcess:
    """A running ``flowkit serve`` subprocess and everything it printed so far."""

    process: trio.Process
    base: str
    output: bytearray = attrs.Factory(bytearray)

    def text(self) -> str:
        return self.output.decode(errors="replace")


@asynccontextmanager
async def flowkit_serve_process(
    args: list[str], cwd: Path, *, nofile: int | None = None
) -> AsyncIterator[ServeProcess]:
    """Run ``flowkit serve ARGS`` on a free port until it has exited (or kill it)."""
    port = free_port()
    command = [sys.executable, "-c", _SERVE_MAIN, "serve", *args, "--port", str(port)]
    env = dict(os.environ)
    if nofile is not None:
        env["FLOWKIT_TEST_NOFILE"] = str(nofile)
    process = await trio.lowlevel.open_process(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    served = ServeProcess(process, f"http://127.0.0.1:{port}")
    stdout = process.stdout
    assert stdout is not None
    try:
        while b"serving MCP at" not in served.output:
            chunk = await stdout.receive_some()
            assert chunk, served.text()
            served.output += chunk

        async def drain() -> None:
            while chunk := await stdout.receive_some():
                served.output += chunk

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            yield served
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
