"""2026-07-28: a disconnect cancels the pipeline at once, and nothing more is sent.

Measured on one clock: the test server runs in the test's own trio run, so
the client's close and the tool's cancellation handler both read
``trio.current_time()``. The 2025-era counterpart (a disconnect is *not* a
cancel) is ``test_streams.test_handshake_era_disconnect_is_not_a_cancel``.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio

from flowkit_http import MCPApp, MCPServer, Progress

from ._raw import JSON_HEADERS, messages, raw_request, request
from ._serving import serving

TRIALS = 20
LIMIT = 0.050  # seconds: "well under 50 ms"


@attrs.define
class Trial:
    """One call's timeline, on trio's clock."""

    stopped: trio.Event = attrs.Factory(trio.Event)
    cancelled_at: float | None = None
    disconnect_seen_at: float | None = None
    sent_after_disconnect: list[bytes] = attrs.Factory(list)


def recording(app: Any, trials: dict[str, Trial]) -> Any:
    """Record when the server saw each request's ``http.disconnect``, and any send after it."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        trial = trials.get(dict(scope.get("headers", ())).get(b"x-trial", b"").decode())
        if trial is None:
            await app(scope, receive, send)
            return

        async def watched_receive() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect" and trial.disconnect_seen_at is None:
                trial.disconnect_seen_at = trio.current_time()
            return message

        async def watched_send(message: Any) -> None:
            if trial.disconnect_seen_at is not None:
                trial.sent_after_disconnect.append(message.get("body", b""))
            await send(message)

        await app(scope, watched_receive, watched_send)

    return wrapper


def make_server(trials: dict[str, Trial]) -> MCPServer:
    server = MCPServer("latency")

    @server.tool
    async def forever(trial: str, interval_ms: int = 5) -> AsyncIterator[Progress]:
        """Tick until cancelled; record the moment of cancellation."""
        steps = 0
        try:
            while True:
                steps += 1
                yield Progress(f"step {steps}")
                await trio.sleep(interval_ms / 1000)
        except trio.Cancelled:
            trials[trial].cancelled_at = trio.current_time()
            raise
        finally:
            trials[trial].stopped.set()

    return server


def stateless_call(trial: str) -> tuple[dict[str, str], bytes]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "progressToken": trial,
    }
    body = request("tools/call", id=1, name="forever", arguments={"trial": trial}, _meta=meta)
    headers = {
        **JSON_HEADERS,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "forever",
        "x-trial": trial,
    }
    return headers, body


async def test_stateless_disconnect_cancels_within_50ms(capsys: pytest.CaptureFixture[str]) -> None:
    trials: dict[str, Trial] = {}
    latencies: list[float] = []
    app = recording(MCPApp(make_server(trials)), trials)
    with trio.fail_after(30):
        async with serving(app) as base:
            for n in range(TRIALS):
                name = f"t{n}"
                trial = trials[name] = Trial()
                headers, body = stateless_call(name)
                async with raw_request(base, "POST", "/mcp", headers, body) as response:
                    assert response.status == 200
                    events, ended = await response.read(stop=3)  # the pipeline is running
                    assert not ended
                    sent = messages(events)
                    assert len(sent) == len(events)  # no priming event, no comment
                    assert all(m["method"] == "notifications/progress" for m in sent)
                    closed_at = trio.current_time()
                    # leaving the block closes the socket
                await trial.stopped.wait()
                assert trial.cancelled_at is not None, "the pipeline ended without a cancel"
                latencies.append(trial.cancelled_at - closed_at)
                # Nothing more for that request once the server saw the disconnect:
                # in particular no response (no result, no error).
                assert trial.disconnect_seen_at is not None
                assert trial.sent_after_disconnect == []
    median, worst = statistics.median(latencies), max(latencies)
    with capsys.disabled():
        print(
            f"\n2026-07-28 disconnect -> pipeline cancelled, {TRIALS} trials: "
            f"median {median * 1000:.2f} ms, max {worst * 1000:.2f} ms"
        )
    assert median < LIMIT
    # A single trial may meet a GC pause or a busy machine; the median is the claim.
    assert worst < 5 * LIMIT
