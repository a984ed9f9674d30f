"""Cross-instance cancel latency: a call runs on A, its ``notifications/cancelled`` goes to B.

    python -m benchmarks.cross_instance [--quick] [--rounds N] [--url redis://HOST:PORT/DB]

Two ``flowkit serve --demo`` processes share one Redis (without ``--url``, a
redis-server of its own, as ``benchmarks.redis_store`` starts it). Each
round: initialize on A, call ``ticker`` on A (a long one), read two ticks,
then POST the cancel to B and time until A's response ends (its chunked body
terminated: A cancelled the pipeline and sends nothing more). That is the
whole path of issue 11's cross-instance cancel: B loads the session, finds
the request running elsewhere, looks up its instance in the registry of
running calls and publishes on A's control channel; A cancels the call and
ends its stream. The target is p99 <= 100 ms.

The last line is ``ratio=<100 ms / p99> p50_ms=<...> p99_ms=<...> rounds=<n>``
(a ratio >= 1 meets the target).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import orjson
import trio

from . import _servers
from ._client import open_session
from ._util import median, percentile, table
from .redis_store import own_redis
from .redis_store_resume import _headers, _Stream

TARGET_MS = 100.0


async def _round(a: int, b: int, out: list[float]) -> None:
    session = await open_session(_servers.HOST, a)
    try:
        assert session.session_id is not None
        headers = _headers(session.session_id)
        post_headers = {
            **headers,
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "ticker",
                "arguments": {"count": 1_000_000, "interval_ms": 5},
                "_meta": {"progressToken": "t"},
            },
        }
        running = _Stream(a)
        try:
            await running.request("POST", post_headers, orjson.dumps(call))
            ticks = 0
            while ticks < 2:
                ticks += len(await running.events())
            cancel = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": 2, "reason": "benchmark"},
            }
            sent = time.perf_counter()
            to_b = _Stream(b)
            try:
                await to_b.request("POST", post_headers, orjson.dumps(cancel))
                assert to_b.status == 202, to_b.status
            finally:
                to_b.close()
            while True:  # ticks already on their way, then the end of the body
                events = await running.events()
                if not events:
                    break
                if any('"result"' in event.data for _, event in events):
                    raise RuntimeError("a cancelled call sent its result")
            out.append((time.perf_counter() - sent) * 1000)
        finally:
            running.close()
    finally:
        await session.aclose()


def cancel_latency(url: str, rounds: int) -> list[float]:
    """Cancel sent to B -> A's response ended, in ms, one per round."""
    env = {"FLOWKIT_REDIS_URL": url}
    out: list[float] = []
    with _servers.running("flowkit", env=env) as a, _servers.running("flowkit", env=env) as b:
        for _ in range(rounds):
            trio.run(_round, a.port, b.port, out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="a Redis of its own (default: start one)")
    parser.add_argument("--redis-server", help="the redis-server to start (default: on PATH)")
    parser.add_argument("--quick", action="store_true", help="10 rounds")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    rounds = 10 if args.quick else args.rounds
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(own_redis(args.redis_server))
        latencies = cancel_latency(url, rounds)
    p50, p99 = median(latencies), percentile(latencies, 99)
    print(f"cancel on B of a call on A -> A's response ended, {rounds} rounds:")
    print(
        table(
            ["measure", "ms"],
            [["p50", f"{p50:.1f}"], ["p99", f"{p99:.1f}"], ["max", f"{max(latencies):.1f}"]],
        )
    )
    print(f"ratio={TARGET_MS / p99:.2f} p50_ms={p50:.1f} p99_ms={p99:.1f} rounds={rounds}")


if __name__ == "__main__":
    main()
