"""Three real HTTP instances (hypercorn + MCPApp) sharing one Redis: ``MCPServer(shared=RedisShared(url))``.

A client's requests land on a different instance each time, as behind a
balancer without stickiness: initialize on A, tools/list on B, tools/call on
C (the stream is cut after a few events), the resumed GETs on A and B,
DELETE on B, then every instance answers 404. Each resume asks from the last
id it saw, and every event arrives exactly once, in order.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import trio

from flowkit.mcp import EndpointConfig
from flowkit_http import (
    MCPApp,
    MCPServer,
    Observability,
    ObservedApp,
    Progress,
    Result,
    StreamSettings,
)
from flowkit_http._demo import ticker
from flowkit_redis import Keys, RedisClient, RedisShared

from ..http._raw import call, initialize, last_event_id, messages, raw_request, request, sse_events
from ..http._serving import serving
from ._server import RedisServer


def make_server(
    url: str,
    keys: Keys,
    name: str,
    announce_interval: float = 30,
    tools: Sequence[Any] = (),
    cluster: bool = False,
    **options: Any,
) -> MCPServer:
    shared = RedisShared(
        url, prefix=keys.prefix, announce_interval=announce_interval, cluster=cluster
    )
    server = MCPServer(name="shared", shared=shared, instance=name, **options)
    for tool in (ticker, *tools):
        server.tool(tool)
    return server


@asynccontextmanager
async def instances(url: str, keys: Keys, n: int = 3) -> AsyncIterator[list[str]]:
    async with AsyncExitStack() as stack:
        bases = [
            await stack.enter_async_context(serving(MCPApp(make_server(url, keys, name))))
            for name in "abc"[:n]
        ]
        yield bases


async def resume(client: httpx.AsyncClient, base: str, headers: dict[str, str], last: str) -> Any:
    get_headers = {**headers, "accept": "text/event-stream", "last-event-id": last}
    get_headers.pop("content-type")
    return await client.get(base + "/mcp", headers=get_headers)


async def test_any_instance_serves_any_request_and_resumes_exactly_once(
    redis_server: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(30):
        async with instances(redis_server.url, keys) as (a, b, c), httpx.AsyncClient() as client:
            headers = await initialize(client, a + "/mcp")
            listed = await client.post(
                b + "/mcp", content=request("tools/list", id=2), headers=headers
            )
            assert listed.status_code == 200
            assert [t["name"] for t in listed.json()["result"]["tools"]] == ["ticker"]

            seen: list[Any] = []
            last = ""
            async with raw_request(
                c, "POST", "/mcp", headers, call(3, "ticker", {"count": 20, "interval_ms": 20})
            ) as response:
                assert response.status == 200
                events, _ = await response.read(stop=6)  # priming + 5 ticks, then cut
                seen.extend(messages(events))
                last = last_event_id(events, last)
            # Resume on A, then B, ... from the last id seen, until the result came.
            for base in [a, b] * 100:
                answer = await resume(client, base, headers, last)
                if answer.status_code == 409:  # C has not seen the disconnect yet
                    await trio.sleep(0.02)
                    continue
                assert answer.status_code == 200, answer.text
                seen.extend(messages(sse_events(answer.content)))
                last = last_event_id(sse_events(answer.content), last)
                if seen and "result" in seen[-1]:
                    break
                await trio.sleep(0.05)
            ticks = [
                m["params"]["progress"] for m in seen if m.get("method") == "notifications/progress"
            ]
            assert ticks == list(range(1, 21))  # every event exactly once, in order
            assert seen[-1]["id"] == 3
            assert seen[-1]["result"]["structuredContent"] == {"count": 20}

            deleted = await client.delete(b + "/mcp", headers=headers)
            assert deleted.status_code == 200
            for base in (a, b, c):
                gone = await client.post(
                    base + "/mcp", content=request("ping", id=9), headers=headers
                )
                assert gone.status_code == 404


@asynccontextmanager
async def resumed_get(base: str, get_headers: dict[str, str], last: str) -> AsyncIterator[Any]:
    """``raw_request`` GET with ``Last-Event-ID``, retried while it is 409.

    409: the instance that carried the stream has not yet stored that its
    client left (the disconnect reaches it a moment later).
    """
    while True:
        async with raw_request(base, "GET", "/mcp", {**get_headers, "last-event-id": last}) as got:
            if got.status != 409:
                yield got
                return
        await trio.sleep(0.02)


def ticks_of(seen: list[Any]) -> list[int]:
    return [m["params"]["progress"] for m in seen if m.get("method") == "notifications/progress"]


async def test_a_resume_on_another_instance_follows_the_running_call_live(
    redis_server: RedisServer, keys: Keys
) -> None:
    """A runs a call; its stream is cut. One GET on B gets the stored events, then the
    live ones as A makes and stores them; that GET is cut too, and one GET on C gets
    the rest, live, and the result: each event once, in order.

    The call waits before ticks 11 and 21 until the test lets it go, which it does
    once the follower (B, then C) is reading: those ticks can only arrive live.
    """
    gates = {11: trio.Event(), 21: trio.Event()}

    async def gated(count: int) -> AsyncIterator[Progress | Result]:
        """Tick, waiting for the test before ticks 11 and 21."""
        for i in range(1, count + 1):
            if i in gates:
                await gates[i].wait()
            yield Progress(f"tick {i}", total=count)
        yield Result(structured={"count": count}, text="done")

    async def read_until(got: Any, tick: int) -> None:
        nonlocal seen, last
        while tick not in ticks_of(seen):
            events, ended = await got.read(stop=1)
            assert not ended
            seen += messages(events)
            last = last_event_id(events, last)

    count = 30
    with trio.fail_after(30):
        async with AsyncExitStack() as stack, httpx.AsyncClient() as client:
            a, b, c = [
                await stack.enter_async_context(
                    serving(MCPApp(make_server(redis_server.url, keys, name, tools=[gated])))
                )
                for name in "abc"
            ]
            headers = await initialize(client, a + "/mcp")
            get_headers = {k: v for k, v in headers.items() if k != "content-type"}
            get_headers["accept"] = "text/event-stream"
            body = call(2, "gated", {"count": count})
            async with raw_request(a, "POST", "/mcp", headers, body) as response:
                events, _ = await response.read(stop=4)  # priming + 3 ticks, then cut
            seen, last = messages(events), last_event_id(events)
            async with resumed_get(b, get_headers, last) as got:
                assert got.status == 200
                await read_until(got, 10)  # the replay (4..10)
                gates[11].set()  # ticks 11..20 are made from now on, while B follows
                await read_until(got, 20)
            async with resumed_get(c, get_headers, last) as got:
                assert got.status == 200
                gates[21].set()  # C follows; the call goes on
                events, ended = await got.read()  # one response, to the end
                assert ended
                seen += messages(events)
    assert ticks_of(seen) == list(range(1, count + 1))  # exactly once, in order
    assert seen[-1]["id"] == 2
    assert seen[-1]["result"]["structuredContent"] == {"count": count}


async def test_a_call_followed_on_another_instance_outlives_its_grace_period(
    redis_server: RedisServer, keys: Keys
) -> None:
    """A gives a call no client carries 1 s; B follows it for 3 s: A must learn, through
    the store, that its client is back (its heartbeat), and not give the call up."""
    gate = trio.Event()

    async def waits(count: int) -> AsyncIterator[Progress | Result]:
        """One tick, then wait for the test, then the result."""
        yield Progress("tick", total=count)
        await gate.wait()
        yield Result(structured={"count": count}, text="done")

    options = {
        "tools": [waits],
        "config": EndpointConfig(detached_call_grace=1.0),
        "settings": StreamSettings(expiry_poll_interval=0.2),
    }
    with trio.fail_after(30):
        async with AsyncExitStack() as stack, httpx.AsyncClient() as client:
            a, b = [
                await stack.enter_async_context(
                    serving(MCPApp(make_server(redis_server.url, keys, name, **options)))
                )
                for name in "ab"
            ]
            headers = await initialize(client, a + "/mcp")
            get_headers = {k: v for k, v in headers.items() if k != "content-type"}
            get_headers["accept"] = "text/event-stream"
            async with raw_request(
                a, "POST", "/mcp", headers, call(2, "waits", {"count": 1})
            ) as response:
                events, _ = await response.read(stop=2)  # priming + the tick, then cut
            seen, last = messages(events), last_event_id(events)
            async with resumed_get(b, get_headers, last) as got:
                assert got.status == 200
                await trio.sleep(3)  # three grace periods, B following all along
                gate.set()
                events, ended = await got.read()
                assert ended
                seen += messages(events)
    assert seen[-1]["id"] == 2
    assert seen[-1]["result"]["structuredContent"] == {"count": 1}  # not the grace error


async def test_with_redis_down_requests_get_503_with_retry_after_then_work_again(
    own_redis: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(30):
        async with instances(own_redis.url, keys, 2) as (a, b), httpx.AsyncClient() as client:
            headers = await initialize(client, a + "/mcp")
            own_redis.stop()
            start = trio.current_time()
            refused = await client.post(b + "/mcp", content=request("ping", id=2), headers=headers)
            assert trio.current_time() - start < 2
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert orjson.loads(refused.content)["error"]["code"] == -32000
            own_redis.start()
            while True:  # back within seconds, no restart (fail_after bounds it)
                fresh = await client.post(
                    a + "/mcp",
                    content=request(
                        "initialize",
                        protocolVersion="2025-11-25",
                        capabilities={},
                        clientInfo={"name": "raw", "version": "0"},
                    ),
                    headers={k: v for k, v in headers.items() if not k.startswith("mcp-")},
                )
                if fresh.status_code == 200:
                    break
                assert fresh.status_code == 503
                await trio.sleep(0.1)


async def test_redis_killed_mid_stream_ends_the_stream_without_a_gap(
    own_redis: RedisServer, keys: Keys
) -> None:
    """The stream either goes on or ends: never an event the store lacks, never a hang."""
    with trio.fail_after(30):
        async with instances(own_redis.url, keys, 2) as (a, b), httpx.AsyncClient() as client:
            headers = await initialize(client, a + "/mcp")
            body = call(2, "ticker", {"count": 200, "interval_ms": 10})
            ticks: list[int] = []
            async with raw_request(a, "POST", "/mcp", headers, body) as response:
                events, _ = await response.read(stop=6)
                own_redis.stop()
                killed = trio.current_time()
                more, ended = await response.read()  # until the body ends
                assert ended
                assert trio.current_time() - killed < 3
                for message in messages(events + more):
                    if message.get("method") == "notifications/progress":
                        ticks.append(message["params"]["progress"])
            assert ticks == list(range(1, len(ticks) + 1))  # in order, no gap
            assert 5 <= len(ticks) < 200  # it ended early, with the store
            own_redis.start()
            while True:  # back within seconds (the fail_after bounds it)
                fresh = await client.post(
                    b + "/mcp",
                    content=request(
                        "initialize",
                        protocolVersion="2025-11-25",
                        capabilities={},
                        clientInfo={"name": "raw", "version": "0"},
                    ),
                    headers={k: v for k, v in headers.items() if not k.startswith("mcp-")},
                )
                if fresh.status_code == 200:
                    break
                await trio.sleep(0.1)


async def test_events_kept_in_an_outage_are_bounded_and_the_call_ends_with_an_error(
    own_redis: RedisServer, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis hangs mid-stream. The stream ends (never an event the store lacks); the call
    goes on, its events kept, until max_pending_bytes: then it is stopped, and once Redis
    is back a resume gets what was stored, then the call's error: never a silent gap."""
    shared = RedisShared(own_redis.url, prefix=keys.prefix, max_pending_bytes=20_000)
    server = MCPServer(name="shared", shared=shared, instance="a")
    server.tool(ticker)
    app = MCPApp(server)
    with trio.fail_after(40):
        async with serving(app) as a, httpx.AsyncClient() as client:
            headers = await initialize(client, a + "/mcp")
            get_headers = {k: v for k, v in headers.items() if k != "content-type"}
            get_headers["accept"] = "text/event-stream"
            body = call(2, "ticker", {"count": 10**6, "interval_ms": 1})
            async with raw_request(a, "POST", "/mcp", headers, body) as response:
                events, _ = await response.read(stop=6)
                own_redis.pause()  # SIGSTOP: connections held, nothing answered
                more, ended = await response.read()
                assert ended  # the next write could not be stored: the response ends
            seen, last = messages(events + more), last_event_id(events + more)
            while app.statistics():  # noqa: ASYNC110  (~175 ticks of 115 bytes to the bound)
                await trio.sleep(0.05)
            assert any("given up" in r.getMessage() for r in caplog.records)
            own_redis.resume()
            while True:  # back within seconds, no restart (fail_after bounds it)
                get = {**get_headers, "last-event-id": last}
                async with raw_request(a, "GET", "/mcp", get) as got:
                    if got.status == 200:
                        replayed, ended = await got.read()
                        assert ended
                        break
                    assert got.status == 503
                await trio.sleep(0.1)
    resumed = messages(replayed)
    ticks = ticks_of(seen + resumed)
    assert ticks == list(range(1, len(ticks) + 1))  # what was stored, in order, no gap
    assert len(ticks) < 10**6
    assert resumed[-1]["id"] == 2
    assert resumed[-1]["error"]["message"].startswith("Events of this call could not be stored")


async def test_200_random_disconnects_each_resumed_on_a_random_instance(
    redis_server: RedisServer, keys: Keys
) -> None:
    """One long call on A; the client keeps losing its stream and resuming anywhere.

    Each round picks an instance at random (seeded), resumes from the last id
    the client saw, keeps a random number of the events it gets (the rest
    "lost" with the connection) and disconnects. On every instance, A
    included, the resume follows the running call through the store: what is
    stored after the id, then the live events. Every tick arrives exactly
    once and in order, then the result; most resumes land while the call runs
    on another instance. (A resume landing while the last instance still
    carries the stream waits there until it let go: about 40 ms a round,
    hence a call long enough for 200 rounds.)
    """
    rng = random.Random(10)
    count = 3500
    with trio.fail_after(120):
        async with instances(redis_server.url, keys) as bases, httpx.AsyncClient() as client:
            headers = await initialize(client, bases[0] + "/mcp")
            get_headers = {k: v for k, v in headers.items() if k != "content-type"}
            get_headers["accept"] = "text/event-stream"
            seen: list[Any] = []
            last = ""

            def keep(events: list[Any], limit: int) -> None:
                nonlocal last
                seen.extend(messages(events[:limit]))
                last = last_event_id(events[:limit], last)

            body = call(2, "ticker", {"count": count, "interval_ms": 4})
            async with raw_request(bases[0], "POST", "/mcp", headers, body) as response:
                events, _ = await response.read(stop=3)
                keep(events, len(events))
            disconnects = elsewhere = 1
            while not (seen and "result" in seen[-1]):
                base = rng.choice(bases)
                elsewhere += base != bases[0]
                get = {**get_headers, "last-event-id": last}
                async with raw_request(base, "GET", "/mcp", get) as response:
                    if response.status == 409:  # the last instance has not seen us leave yet
                        continue
                    assert response.status == 200
                    events, _ = await response.read(stop=rng.randint(1, 8))
                    keep(events, rng.randint(0, len(events)))
                disconnects += 1
    ticks = [m["params"]["progress"] for m in seen if m.get("method") == "notifications/progress"]
    assert ticks == list(range(1, count + 1))  # exactly once, in order
    assert seen[-1]["id"] == 2
    assert disconnects >= 200
    assert elsewhere >= 100


async def test_instances_serving_different_definitions_are_logged_loudly(
    redis_server: RedisServer, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    same = make_server(redis_server.url, keys, "a", announce_interval=0.1)
    twin = make_server(redis_server.url, keys, "b", announce_interval=0.1)
    other = make_server(redis_server.url, keys, "c", announce_interval=0.1)

    @other.tool
    def extra(x: int) -> int:
        """A tool only this instance has."""
        return x

    definitions = keys.definitions()
    with trio.fail_after(20):
        async with RedisClient.connect(redis_server.url) as redis_client:
            redis = redis_client.redis
            async with serving(MCPApp(same)), serving(MCPApp(twin)):
                announced = await redis.hgetall(definitions)
                assert set(announced) == {b"a", b"b"}
                assert len(set(announced.values())) == 1  # the same definition
                assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
                async with serving(MCPApp(other)):
                    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
                    assert len(errors) == 1
                    assert "instance c serves definition" in errors[0]
                    assert "a, b serve(s) another" in errors[0]
                # c is gone: withdrawn, or pruned by a and b three intervals on.
                while set(await redis.hgetall(definitions)) != {b"a", b"b"}:  # noqa: ASYNC110
                    await trio.sleep(0.05)  # Redis has no event for this: poll
                errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
                # a and b may have seen c meanwhile: each says so once, naming c
                assert all(" c " in m or m.startswith("instance c ") for m in errors)
                assert 1 <= len(errors) <= 3
                await trio.sleep(0.5)  # five more announcements each: nothing new to report
                assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == len(errors)


async def test_readyz_reflects_the_redis_store(own_redis: RedisServer, keys: Keys) -> None:
    """/readyz pings the shared store: 503 while Redis is down, 200 again once it is back."""
    mcp = MCPApp(make_server(own_redis.url, keys, "a"))
    with trio.fail_after(30):
        async with (
            serving(ObservedApp(mcp, Observability(), mcp)) as base,
            httpx.AsyncClient() as client,
        ):
            assert (await client.get(base + "/readyz")).status_code == 200
            own_redis.stop()
            down = await client.get(base + "/readyz")
            assert down.status_code == 503
            assert "not ready" in down.text
            assert "password" not in down.text
            own_redis.start()
            for _ in range(100):  # it reconnects with backoff: ready again within seconds
                if (await client.get(base + "/readyz")).status_code == 200:
                    break
                await trio.sleep(0.1)
            else:
                raise AssertionError("/readyz never came back after Redis did")
