"""Issue 6, item 3: cancelled calls leave nothing behind.

1,000 tool calls against an in-process hypercorn, each cancelled at a random
point: half in the 2025 era by ``notifications/cancelled`` (after 0-4 events,
some after the client already dropped the connection), half in the 2026-07-28
era by disconnecting (before the response head, right after it, or after a few
events). The tools run forever, as an async generator or as a four-stage
flowkit pipeline, so nothing ends unless the cancellation works.

Afterwards: live trio tasks (counted by an instrument from before the server
started) are back to the idle server's count; the adapter holds no call,
response or listener; sessions have nothing in flight and, once deleted, no
stored events; nothing was logged at ERROR; and the traced Python heap is
back to what it was after a warm-up round (within 512 B per call).
"""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx
import pytest
import trio

from flowkit_http import MCPApp

from ..http._raw import JSON_HEADERS, call, initialize, messages, raw_request, request
from ..http._serving import serving
from ._support import (
    counting_tasks,
    eventually,
    live_state,
    make_reliability_server,
    traced_memory,
    tracing_memory,
)

SESSIONS = 8
CONCURRENCY = 16
TOOLS = (("forever", {"interval_ms": 2}), ("pipeline_forever", {"interval_ms": 2}))


def _stateless(id: int, name: str, arguments: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "progressToken": "p",
    }
    body = request("tools/call", id=id, name=name, arguments=arguments, _meta=meta)
    headers = {
        **JSON_HEADERS,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": name,
    }
    return headers, body


async def _cancel_by_notification(
    base: str, client: httpx.AsyncClient, headers: dict[str, str], id: int, rng: random.Random
) -> None:
    name, arguments = rng.choice(TOOLS)
    read = rng.randint(0, 4)
    drop_first = rng.random() < 0.25  # disconnect, then cancel (a disconnect alone is not one)
    cancel = request("notifications/cancelled", id=None, requestId=id, reason="test")
    async with raw_request(base, "POST", "/mcp", headers, call(id, name, arguments)) as response:
        assert response.status == 200
        events, _ = await response.read(stop=read) if read else ([], False)
        if not drop_first:
            reply = await client.post(base + "/mcp", content=cancel, headers=headers)
            assert reply.status_code == 202
            more, ended = await response.read()
            assert ended  # the server ends the response ...
            events += more
    if drop_first:
        reply = await client.post(base + "/mcp", content=cancel, headers=headers)
        assert reply.status_code == 202
    assert all("result" not in m and "error" not in m for m in messages(events))  # ... unanswered


async def _cancel_by_disconnect(base: str, id: int, rng: random.Random) -> None:
    name, arguments = rng.choice(TOOLS)
    headers, body = _stateless(id, name, arguments)
    read = rng.randint(-1, 4)
    if read < 0:  # gone before the response head was even written
        host, port = base.removeprefix("http://").rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        lines = [
            "POST /mcp HTTP/1.1",
            f"host: {host}:{port}",
            f"content-length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await stream.aclose()
        return
    async with raw_request(base, "POST", "/mcp", headers, body) as response:
        assert response.status == 200
        if read:
            await response.read(stop=read)


async def _round(base: str, calls: int, rng: random.Random, first_id: int) -> dict[str, int]:
    """``calls`` cancelled calls, both eras; the sessions are deleted at the end."""
    counts = {"notification": 0, "disconnect": 0}
    limiter = trio.CapacityLimiter(CONCURRENCY)
    async with httpx.AsyncClient() as client:
        sessions = [await initialize(client, base + "/mcp") for _ in range(SESSIONS)]

        async def one(index: int) -> None:
            async with limiter:
                id = first_id + index
                if index % 2 == 0:
                    counts["notification"] += 1
                    headers = sessions[index % SESSIONS]
                    await _cancel_by_notification(base, client, headers, id, rng)
                else:
                    counts["disconnect"] += 1
                    await _cancel_by_disconnect(base, id, rng)

        async with trio.open_nursery() as nursery:
            for index in range(calls):
                nursery.start_soon(one, index)
        return counts | {
            "sessions": len(sessions),
            "_deleted": await _delete(client, base, sessions),
        }


async def _delete(client: httpx.AsyncClient, base: str, sessions: list[dict[str, str]]) -> int:
    for headers in sessions:
        reply = await client.delete(base + "/mcp", headers=headers)
        assert reply.status_code == 200
    return len(sessions)


async def _quiescent(app: MCPApp, tasks: Any, baseline: int) -> None:
    await eventually(lambda: len(tasks) == baseline and not any(live_state(app).values()))


async def test_a_thousand_cancelled_calls_leave_no_task_channel_session_or_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(20260728)
    server, _, _ = make_reliability_server()
    app = MCPApp(server)
    with tracing_memory(), counting_tasks() as tasks, trio.fail_after(120):
        async with serving(app) as base:
            await trio.testing.wait_all_tasks_blocked()
            idle_tasks = len(tasks)
            # Warm-up: every code path once, so imports and caches are in the baseline.
            await _round(base, 300, rng, first_id=1)
            await _quiescent(app, tasks, idle_tasks)
            before = traced_memory()

            counts = await _round(base, 1000, rng, first_id=10_000)
            await _quiescent(app, tasks, idle_tasks)
            after = traced_memory()
            state = live_state(app)
    assert counts["notification"] == 500
    assert counts["disconnect"] == 500
    assert tasks.spawned > 2000  # the calls really ran (runner, pipeline stages, connections)
    assert state == {k: 0 for k in state}
    # A cancellation is not a crash: nothing logged at ERROR (the runner once
    # logged ClosedResourceError when a cancel raced its next flush).
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[:3]
    growth = after - before
    print(
        f"\ncancellation: 1000 calls (500 notifications/cancelled, 500 disconnects); "
        f"tasks spawned {tasks.spawned}, live after = idle = {idle_tasks}; "
        f"traced heap before {before} B, after {after} B, growth {growth} B"
    )
    # Under 512 B per call (measured: 170-300 KB in all): what remains is trio's
    # lazily pruned deadline heap (stale keepalive timers; pruned only past 1,000
    # entries) and container capacity, not per-call state. Leaked tasks, calls,
    # streams and sessions are caught exactly by the counts above; a call left
    # behind would also keep its stream, outbox, channel and events (KiBs each).
    assert growth < 512 * 1024, f"heap grew by {growth} bytes over 1000 cancelled calls"
