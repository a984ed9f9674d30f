"""Resumption through a proxy that cuts every SSE response after a few KB.

2025-11-25 "Resumability and Redelivery": a client resumes a dropped stream
with GET and ``Last-Event-ID``; the server replays what followed. Every
progress event must arrive exactly once and in order however many times
the stream is cut. In the 2026-07-28 era a closed stream is a cancellation
("Cancellation" of the stateless transport), so a cut is a typed error and
the call is never retried by the client.
"""

from __future__ import annotations

import random

import attrs
import pytest
import trio

from flowkit_client import (
    LogMessage,
    Progress,
    ResumeFailed,
    RetryPolicy,
    StreamCut,
    ToolResult,
    open_client,
)
from flowkit_http import MCPServer, create_app

from ..http._serving import serving
from ..http._tools import Probe, make_server
from ._proxy import cutting_proxy

FAST = RetryPolicy(initial=0.01, max_delay=0.05)


def fast_server() -> tuple[MCPServer, Probe]:
    """The test server, asking clients to reconnect after 5 ms (SSE ``retry``)."""
    server, probe = make_server()
    server.config = attrs.evolve(server.config, sse_retry_ms=5)
    return server, probe


async def test_every_event_exactly_once_in_order_when_cut_many_times() -> None:
    server, _ = fast_server()
    count = 600
    with trio.fail_after(60):
        async with (
            serving(create_app(server, "/mcp")) as base,
            cutting_proxy(base, cut_after=4096) as (proxy, stats),
            open_client(
                proxy + "/mcp", era="2025-11-25", retry=FAST, rng=random.Random(1)
            ) as client,
            client.call_tool("ticker", {"count": count}) as call,
        ):
            events = [event async for event in call]
    progress = [event for event in events if isinstance(event, Progress)]
    assert [p.progress for p in progress] == list(range(1, count + 1))
    assert [p.message for p in progress] == [f"tick {i}/{count}" for i in range(1, count + 1)]
    assert events[-1] == ToolResult(
        content=events[-1].content,
        structured={"count": count},  # type: ignore[union-attr]
    )
    assert stats.cuts >= 10  # the stream really was cut, many times


async def test_partials_survive_cuts_too() -> None:
    server, _ = fast_server()
    with trio.fail_after(60):
        async with (
            serving(create_app(server, "/mcp")) as base,
            cutting_proxy(base, cut_after=2048) as (proxy, stats),
            open_client(proxy + "/mcp", era="2025-11-25", retry=FAST) as client,
            client.call_tool("chatty", {"count": 300}) as call,
        ):
            logs = [e.data["i"] async for e in call if isinstance(e, LogMessage)]
    # chatty's partials are conflated under pressure (its policy), never reordered
    # or repeated: whatever arrived is strictly increasing and ends with the last.
    assert logs == sorted(set(logs))
    assert logs[-1] == 300
    assert stats.cuts >= 3


async def test_a_cut_in_the_stateless_era_is_a_typed_error_and_not_retried() -> None:
    server, probe = make_server()
    with trio.fail_after(30):
        async with (
            serving(create_app(server, "/mcp")) as base,
            cutting_proxy(base, cut_after=2048) as (proxy, stats),
            open_client(proxy + "/mcp", era="2026-07-28", retry=FAST) as client,
        ):
            assert client.server.protocol_version == "2026-07-28"
            with pytest.raises(StreamCut):
                async with client.call_tool("forever", {"interval_ms": 1}) as call:
                    await call.result()
            await probe.stopped.wait()  # the closed stream cancelled the call
            connections = stats.connections
    assert probe.cancelled
    assert stats.cuts == 1
    assert connections == stats.connections  # no reconnection after the cut


async def test_resumption_is_bounded() -> None:
    server, _ = fast_server()
    policy = RetryPolicy(max_attempts=3, initial=0.001, max_delay=0.001)
    with trio.fail_after(30):
        async with (
            serving(create_app(server, "/mcp")) as base,
            cutting_proxy(base, cut_after=2048) as (proxy, stats),
            open_client(proxy + "/mcp", era="2025-11-25", retry=policy) as client,
        ):
            async with client.call_tool("forever", {"interval_ms": 1}) as call:
                await call.__anext__()
                stats.cut_after = 0  # from now on every stream is cut before its first event
                with pytest.raises(ResumeFailed, match="after 3 attempts"):
                    await call.result()
            cuts = stats.cuts
    assert cuts == 1 + 3  # the first cut, then three fruitless resumptions


def test_backoff_is_full_jitter_over_a_capped_window_above_the_server_retry() -> None:
    policy = RetryPolicy(initial=0.5, max_delay=4.0)
    rng = random.Random(7)
    draws = [[policy.delay(attempt, None, rng) for _ in range(2000)] for attempt in range(6)]
    for attempt, delays in enumerate(draws):
        window = min(4.0, 0.5 * 2**attempt)
        assert 0 <= min(delays) < window * 0.05  # full jitter: down to ~0 ...
        assert window * 0.95 < max(delays) <= window  # ... up to the whole window
    # The server's retry (ms) is a floor the jitter never undercuts.
    assert min(policy.delay(0, 1500, rng) for _ in range(500)) >= 1.5
    assert max(policy.delay(9, 1500, rng) for _ in range(500)) <= 1.5 + 4.0


def test_retry_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="initial"):
        RetryPolicy(initial=-1)
