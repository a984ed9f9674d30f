"""Issue 20, item 10: a randomized mix of attacks against one server while a client works.

One real hypercorn server on loopback. Eight attackers pick, at random
(seeded), among: an ``initialize`` never followed by
``notifications/initialized``; a ``ticker(count=10**12)`` whose client reads
one event and hangs up (2025 era: the call runs on); a 1 MB invalid argument;
a 1 MB ``progressToken``; more calls than the session cap allows; ``count:
5.0``. Meanwhile a well-behaved client keeps calling a tool in its own
session. It must be served every time within a generous bound; the attacks
get their specific small answers; afterwards every hung-up call and
abandoned session is gone, and the server still serves.
"""

from __future__ import annotations

import random
import time

import attrs
import httpx
import trio

from flowkit.mcp import EndpointConfig
from flowkit_http import MCPApp

from ..http._raw import JSON_HEADERS, call, initialize, raw_request, request
from ..http._serving import serving
from ._support import eventually, make_reliability_server

ATTACKERS = 8
ROUNDS = 12  # attacks per attacker
SEED = 2026_12_01


async def _unfinished_handshake(client: httpx.AsyncClient, url: str) -> None:
    body = request(
        "initialize", protocolVersion="2025-11-25", capabilities={}, clientInfo={"name": "x"}
    )
    response = await client.post(url, content=body, headers=JSON_HEADERS)
    assert response.status_code in (200, 503), response.status_code


async def _hang_up(base: str, headers: dict[str, str]) -> None:
    body = call(1, "ticker", {"count": 10**12, "interval_ms": 1})
    async with raw_request(base, "POST", "/mcp", headers, body) as response:
        if response.status == 200:
            await response.read(stop=2)
        else:
            assert response.status == 429  # the session's calls are capped


async def _huge_argument(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    response = await client.post(
        url, content=call(2, "ticker", {"count": "9" * 1_000_000}), headers=headers
    )
    assert response.status_code in (200, 429)
    assert len(response.content) < 4096  # the invalid value is echoed truncated


async def _huge_token(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    body = call(3, "ticker", {"count": 1}, token="t" * 1_000_000)
    response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["error"]["code"] == -32602
    assert len(response.content) < 1024


async def _float_count(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    response = await client.post(url, content=call(4, "ticker", {"count": 2.0}), headers=headers)
    assert response.status_code in (200, 429)
    if response.status_code == 200:
        assert b'"structuredContent":{"count":2}' in response.content


async def test_a_random_mix_of_attacks_leaves_a_well_behaved_client_served() -> None:
    config = EndpointConfig(
        detached_call_grace=1.0,
        handshake_timeout=1.0,
        session_idle_timeout=3.0,
        max_sessions=40,
        max_calls_per_session=4,
    )
    server, _, _ = make_reliability_server(config)
    server.settings = attrs.evolve(server.settings, expiry_poll_interval=0.1)
    app = MCPApp(server)
    rng = random.Random(SEED)
    done = trio.Event()
    latencies: list[float] = []
    attacks: dict[str, int] = {}
    with trio.fail_after(120):
        async with serving(app) as base, httpx.AsyncClient(timeout=30) as client:
            url = base + "/mcp"
            polite = await initialize(client, url)

            async def well_behaved() -> None:
                n = 100
                while not done.is_set():
                    n += 1
                    started = time.perf_counter()
                    answer = await client.post(
                        url, content=call(n, "ticker", {"count": 3}), headers=polite
                    )
                    latencies.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text
                    assert b'"structuredContent":{"count":3}' in answer.content
                    await trio.sleep(0.02)

            async def attacker(seed: float) -> None:
                local = random.Random(seed)
                async with httpx.AsyncClient(timeout=30) as own:
                    headers = await initialize(own, url)
                    for _ in range(ROUNDS):
                        kind = local.choice(
                            ["handshake", "hang_up", "argument", "token", "over_cap", "float"]
                        )
                        attacks[kind] = attacks.get(kind, 0) + 1
                        if kind == "handshake":
                            await _unfinished_handshake(own, url)
                        elif kind == "hang_up":
                            await _hang_up(base, headers)
                        elif kind == "argument":
                            await _huge_argument(own, url, headers)
                        elif kind == "token":
                            await _huge_token(own, url, headers)
                        elif kind == "over_cap":
                            async with trio.open_nursery() as nursery:
                                for _ in range(config.max_calls_per_session + 1):
                                    nursery.start_soon(_hang_up, base, headers)
                        else:
                            await _float_count(own, url, headers)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(well_behaved)
                async with trio.open_nursery() as attackers:
                    for _ in range(ATTACKERS):
                        attackers.start_soon(attacker, rng.random())
                peak_calls = len(app._calls)
                # Everything the attackers left behind goes: hung-up calls
                # after the grace period, their sessions when idle.
                await eventually(lambda: not app._calls, poll=0.05)
                await eventually(lambda: len(app.endpoint.sessions) == 1, poll=0.05)
                done.set()
            # The polite session survived all of it and is still served.
            answer = await client.post(url, content=call(1, "ticker", {"count": 1}), headers=polite)
            assert answer.status_code == 200
    assert len(latencies) > 10
    assert max(latencies) < 5.0  # generous: a loaded CI machine, two cores
    print(
        f"\nattack mix: {sum(attacks.values())} attacks {dict(sorted(attacks.items()))}, "
        f"{peak_calls} calls left running when they stopped, all ended; well-behaved client "
        f"{len(latencies)} calls, latency median {sorted(latencies)[len(latencies) // 2] * 1000:.0f}"
        f" ms, max {max(latencies) * 1000:.0f} ms"
    )
