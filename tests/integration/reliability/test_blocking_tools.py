"""Issue 20, item 4: tools that block the event loop.

* the demo's sentence splitter is linear (it was quadratic: 80 KB of ``.``
  then a letter froze the server for 32 s), and ``analyze_document`` on the
  hostile input no longer holds the loop;
* the watchdog names the tool whose task held the loop, on an injected clock
  (a deterministic "blocked" stretch: the tool advances the clock);
* ``thread=True`` runs a blocking tool function off the event loop;
* a CPU-bound tool runs in a worker process (the recipe of docs/serving.md:
  ``thread=True`` plus ``concurrent.futures.ProcessPoolExecutor``) while the
  event loop stays free.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import flowkit
from flowkit.mcp import LocalProtocolError
from flowkit_http import MCPApp, MCPServer, ToolPipeline
from flowkit_http._demo import _sentences
from flowkit_http._demo import server as demo
from flowkit_http._watchdog import Watchdog

from ..http._raw import call, initialize, request
from ..http._serving import serving
from ._support import eventually

_QUADRATIC = re.compile(r"[.!?]+(?:\s|$)")  # the demo's splitter before the fix


def _quadratic_sentences(text: str) -> int:
    """The old count: CPU-bound and holding the GIL for its whole run."""
    return len(_QUADRATIC.findall(text.strip() + " ")) if text.strip() else 0


@given(st.text(alphabet=".!? \n\t\u00a0ab", max_size=40))
def test_the_linear_splitter_counts_what_the_old_pattern_counted(text: str) -> None:
    assert _sentences(text.strip()) == _quadratic_sentences(text)


def test_the_splitter_is_linear_on_the_input_that_froze_the_server() -> None:
    """200 KB of '.' then a letter: ~5 minutes for the old pattern (32 s at 80 KB)."""
    began = time.perf_counter()
    assert _sentences("." * 200_000 + "a") == 0
    assert _sentences("Hi. " * 50_000) == 50_000
    assert time.perf_counter() - began < 1.0  # generous: it takes milliseconds


@contextmanager
def watching(threshold: float, **kw: Any) -> Iterator[Watchdog]:
    watchdog = Watchdog(threshold, **kw)
    trio.lowlevel.add_instrument(watchdog)
    try:
        yield watchdog
    finally:
        trio.lowlevel.remove_instrument(watchdog)


async def _call(base: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        headers = await initialize(client, base + "/mcp")
        response = await client.post(
            base + "/mcp", content=call(1, name, arguments, token=None), headers=headers
        )
    events = [line for line in response.text.splitlines() if line.startswith("data: {")]
    result: dict[str, Any] = orjson.loads(events[-1][len("data: ") :])["result"]
    return result


async def test_analyze_document_on_the_hostile_input_does_not_hold_the_loop() -> None:
    with trio.fail_after(30), watching(1.0) as watchdog:
        async with serving(MCPApp(demo)) as base:
            result = await _call(base, "analyze_document", {"text": "." * 80_000 + "a"})
    assert result["structuredContent"]["sentences"] == 0
    assert watchdog.stretches == 0, watchdog.longest


class _FakeTime:
    """A clock the test advances: a step that advances it "blocked" the loop."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_watchdog_names_the_tool_that_held_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _FakeTime()
    server = MCPServer(name="stalls")

    @server.tool
    def stall() -> str:
        """Holds the loop for 2 s (of the watchdog's clock)."""
        clock.now += 2.0
        return "done"

    def hold(x: int) -> int:
        clock.now += 3.0
        return x

    @server.tool
    def staged() -> ToolPipeline:
        """A pipeline whose stage holds the loop for 3 s."""
        return ToolPipeline(range(3), flowkit.map(hold), flowkit.buffer(2))

    caplog.set_level(logging.WARNING, logger="flowkit_http")
    with trio.fail_after(20), watching(0.5, clock=clock) as watchdog:
        async with serving(MCPApp(server)) as base:
            assert (await _call(base, "stall", {}))["content"][0]["text"] == "done"
            await _call(base, "staged", {})
    blocked = [r.getMessage() for r in caplog.records if "event loop blocked" in r.getMessage()]
    assert blocked[0] == "event loop blocked for 2000 ms by task 'tool stall' (tool 'stall')"
    assert all("(tool 'staged')" in line for line in blocked[1:]), blocked
    # The three items may be fused into one step: 3 s each, 9 s in all.
    assert sum(int(line.split(" for ")[1].split(" ms")[0]) for line in blocked[1:]) == 9000
    assert watchdog.stretches == len(blocked)
    assert watchdog.longest >= 3.0


def test_thread_is_for_plain_functions_only() -> None:
    server = MCPServer()

    async def coroutine() -> str:
        return "x"

    with pytest.raises(LocalProtocolError, match="thread=True runs a plain function"):
        server.tool(thread=True)(coroutine)


async def test_a_thread_tool_blocks_its_thread_not_the_event_loop() -> None:
    server = MCPServer(name="threads")
    entered, gate = threading.Event(), threading.Event()

    @server.tool(thread=True)
    def wait_for_gate() -> str:
        """Blocks its thread until the test opens the gate."""
        entered.set()
        return "opened" if gate.wait(timeout=10) else "timed out"

    results: list[dict[str, Any]] = []
    with trio.fail_after(8):
        async with serving(MCPApp(server)) as base, trio.open_nursery() as nursery:

            async def blocked_call() -> None:
                results.append(await _call(base, "wait_for_gate", {}))

            nursery.start_soon(blocked_call)
            await eventually(entered.is_set)
            # The thread is blocked; the loop still answers other requests.
            async with httpx.AsyncClient() as client:
                headers = await initialize(client, base + "/mcp")
                listed = await client.post(
                    base + "/mcp", content=request("tools/list", id=2), headers=headers
                )
            assert listed.status_code == 200
            gate.set()
    assert results[0]["content"][0]["text"] == "opened"


async def test_a_cpu_bound_tool_in_a_worker_process_leaves_the_loop_free() -> None:
    """The recipe of docs/serving.md: ``thread=True`` waiting on a process pool.

    The old quadratic splitter on 14 KB of '.' (over a second of CPU, holding
    its process's GIL throughout) runs in a worker process; meanwhile the
    event loop keeps its heartbeat and the watchdog sees no blocked stretch.
    """
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        server = MCPServer(name="cpu")

        @server.tool(thread=True)
        def count_sentences(text: str) -> dict[str, int]:
            """Count sentences in a worker process."""
            return {"sentences": pool.submit(_quadratic_sentences, text).result()}

        beats = 0
        with trio.fail_after(60), watching(0.5) as watchdog:
            async with serving(MCPApp(server)) as base, trio.open_nursery() as nursery:

                async def heartbeat() -> None:
                    nonlocal beats
                    while True:
                        await trio.sleep(0.01)
                        beats += 1

                nursery.start_soon(heartbeat)
                result = await _call(base, "count_sentences", {"text": "." * 14_000 + "a"})
                nursery.cancel_scope.cancel()
    assert result["structuredContent"] == {"sentences": 0}
    assert watchdog.stretches == 0, watchdog.longest
    assert beats >= 20, beats
