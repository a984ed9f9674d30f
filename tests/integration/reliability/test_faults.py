"""Issue 6, item 9: a failing operator fails its own call only.

Eight pipeline calls whose middle stage raises at a random item, four async
generators that raise, and twelve healthy calls all run at once on one
session. Each failing call ends with an ``isError`` result naming the
exception (after the items before it were delivered); every healthy call
completes with its full result; the server then still answers, nothing is
left running, and the only ERROR lines are the failures themselves: the
first of each tool in full with its traceback, the repeats folded into a
summary line (issue 16, item 5).
"""

from __future__ import annotations

import logging
import random
import re
from typing import Any

import httpx
import pytest
import trio

from flowkit_http import MCPApp

from ..http._raw import call, initialize, messages, raw_request, request
from ..http._serving import serving
from ._support import live_state, make_reliability_server


async def _run(base: str, headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
    async with raw_request(base, "POST", "/mcp", headers, body) as response:
        assert response.status == 200
        events, ended = await response.read()
    assert ended
    return messages(events)


async def test_operator_fault_is_an_error_result_for_that_call_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    rng = random.Random(9)
    server, _, faults = make_reliability_server()
    app = MCPApp(server)
    outcomes: dict[str, list[tuple[Any, list[dict[str, Any]]]]] = {
        "faulty": [],
        "boom": [],
        "ticker": [],
    }
    with trio.fail_after(60):
        async with serving(app) as base, httpx.AsyncClient() as client:
            headers = await initialize(client, base + "/mcp")

            async def one(kind: str, id: int, arguments: dict[str, Any], expect: Any) -> None:
                sent = await _run(base, headers, call(id, kind, arguments))
                outcomes[kind].append((expect, sent))

            async with trio.open_nursery() as nursery:
                for i in range(8):
                    after = rng.randint(2, 40)
                    nursery.start_soon(one, "faulty", 100 + i, {"after": after}, after)
                for i in range(4):
                    after = rng.randint(0, 10)
                    nursery.start_soon(one, "boom", 200 + i, {"after": after}, after)
                for i in range(12):
                    count = rng.randint(20, 80)
                    arguments = {"count": count, "interval_ms": 1}
                    nursery.start_soon(one, "ticker", 300 + i, arguments, count)
            reply = await client.post(base + "/mcp", content=request("ping", id=1), headers=headers)
            assert reply.json()["result"] == {}
            state = live_state(app)
    assert state["calls"] == 0
    assert state["in_flight"] == 0
    assert faults.failures == 8
    for after, sent in outcomes["faulty"]:
        *progress, final = sent
        assert len(progress) == after - 1  # the items before the failing one went out
        assert final["result"]["isError"] is True
        assert f"ValueError: stage failed on item {after}" in final["result"]["content"][0]["text"]
    for after, sent in outcomes["boom"]:
        *progress, final = sent
        assert len(progress) == after
        assert final["result"]["isError"] is True
        assert "RuntimeError: the sensor caught fire" in final["result"]["content"][0]["text"]
    for count, sent in outcomes["ticker"]:
        *progress, final = sent
        assert [m["params"]["progress"] for m in progress] == list(range(1, count + 1))
        assert final["result"]["structuredContent"] == {"count": count}
        assert "isError" not in final["result"] or final["result"]["isError"] is False
    # Each failure is logged (issue 16.5), rate-limited: the first of each tool in
    # full, the repeats in a summary line. Nothing else is an error (no runner crash).
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    full = [m for m in errors if not m.startswith("repeated in the last")]
    assert len(full) == 2, errors
    assert "tool 'boom' failed: RuntimeError: the sensor caught fire" in full
    assert any(
        re.fullmatch(r"tool 'faulty' failed: ValueError: stage failed on item \d+", m) for m in full
    )
