"""The benchmarks' floor server (bare hypercorn, canned replies) serves the load client.

``benchmarks.concurrent`` and ``benchmarks.idle`` print each server's figures
against it, so it must deliver what the real servers deliver to the same client:
every progress notification of a ``ticker`` call, on time, then the result.
"""

from __future__ import annotations

import pytest
import trio

from benchmarks import _servers, concurrent
from benchmarks._client import PROTOCOL_VERSION, STATELESS_VERSION, open_session


async def _call(port: int) -> tuple[int, list[float], list[float], bool]:
    s = await open_session(_servers.HOST, port, _servers.PATH)
    try:
        r = await s.call_tool("ticker", {"count": 3, "interval_ms": 20})
        echo = await s.call_tool("echo", {"text": "x"})
    finally:
        s.close()
    lates = [t - (r.t_sent + v * 0.02) for v, t in zip(r.progress, r.times, strict=True)]
    return r.status, r.progress, lates, r.ok and echo.ok


def test_floor_streams_a_ticker_call() -> None:
    with _servers.running("floor", []) as srv:
        status, progress, lates, ok = trio.run(_call, srv.port)
    assert status == 200
    assert progress == [1.0, 2.0, 3.0]
    assert ok
    assert min(lates) > -0.005  # never early: each tick is due at start + i x interval


def test_concurrent_ramp_spreads_the_call_starts() -> None:
    """``--ramp-ms`` starts the calls over that span, and every call still completes."""
    with _servers.running("floor", []) as srv:
        results, _ = trio.run(concurrent._scenario, srv.port, 10, 2, 20, PROTOCOL_VERSION, 300)
    sent = sorted(r.t_sent for r in results if r is not None)
    assert len(sent) == 10
    assert all(r is not None and r.ok and r.progress == [1.0, 2.0] for r in results)
    assert sent[-1] - sent[0] >= 0.9 * 300 * 9 / 10 / 1000  # call i starts at ramp x i / C


def test_concurrent_runs_stateless_calls_on_flowkit_and_the_floor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--era 2026-07-28``: every call is its connection's first request, and all complete."""
    args = ["--sessions", "20", "--count", "3", "--interval-ms", "20", "--servers", "floor,flowkit"]
    outcomes = concurrent.main([*args, "--era", STATELESS_VERSION])
    assert [(o.server, o.completed, o.failed) for o in outcomes] == [
        ("floor", 20, 0),
        ("flowkit", 20, 0),
    ]
    assert "C=20 flowkit: lateness p99" in capsys.readouterr().out
