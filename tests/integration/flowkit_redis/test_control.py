"""The control bus: what a client sends to one instance reaches the call running on another.

Two real HTTP instances (hypercorn + MCPApp) share one real redis-server. A
call runs on A; its cancel, its session's DELETE and its elicitation answer
are sent to B, which forwards each over A's control channel. And an instance
killed mid-call (a real ``flowkit serve --redis`` process, SIGKILL by PID):
the client resuming on the other instance gets the lost-call error (-32010)
once the dead instance's lease expired, never a hang.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import orjson
import trio

from flowkit.mcp import EndpointConfig, Resource, Tool
from flowkit.mcp._errors import CALL_LOST
from flowkit_http import MCPApp
from flowkit_redis import Keys

from ..http._raw import (
    JSON_HEADERS,
    call,
    initialize,
    last_event_id,
    messages,
    raw_request,
    request,
    sse_events,
)
from ..http._serving import serving
from ._fleet import greet, serve_process, until_idle
from ._server import RedisClusterServers, RedisServer
from .test_http import make_server


@asynccontextmanager
async def two(
    url: str, keys: Keys, *, cluster: bool = False
) -> AsyncIterator[list[tuple[str, MCPApp]]]:
    """Instances ``a`` and ``b``: (base URL, app) each."""
    async with AsyncExitStack() as stack:
        served = []
        for name in "ab":
            config = EndpointConfig(request_state_keys=(b"k" * 32,), tools_list_changed=True)
            server = make_server(url, keys, name, tools=[greet], cluster=cluster, config=config)
            app = MCPApp(server)
            app.endpoint.resources.add(Resource("test://doc", "doc", lambda: "v1"))
            served.append((await stack.enter_async_context(serving(app)), app))
        yield served


def long_ticks(id: int) -> bytes:
    return call(id, "ticker", {"count": 100_000, "interval_ms": 10})


async def until_redis_answers(http: httpx.AsyncClient, base: str) -> None:
    """Until the instance reaches Redis: a fresh Cluster's first requests may be 503.

    (coredis may find the new cluster's nodes inconsistent for a moment;
    the instance answers 503 with ``Retry-After`` and probes until it is up.)
    """
    while True:
        # No session: refused (400), but only after the live sessions were counted in Redis.
        probe = await http.post(base + "/mcp", content=request("ping"), headers=JSON_HEADERS)
        if probe.status_code != 503:
            return
        await trio.sleep(0.2)


async def test_a_cancel_sent_to_b_stops_the_call_on_a_without_a_response(
    redis_server: RedisServer, keys: Keys
) -> None:
    await cancel_elsewhere(redis_server.url, keys)


async def test_on_a_cluster_the_cancel_travels_by_sharded_pub_sub(
    redis_cluster: RedisClusterServers, keys: Keys
) -> None:
    await cancel_elsewhere(redis_cluster.url, keys, cluster=True)


async def cancel_elsewhere(url: str, keys: Keys, *, cluster: bool = False) -> None:
    """A call on A, its cancel sent to B: A stops it, sends nothing, frees its id."""
    with trio.fail_after(20):
        async with (
            two(url, keys, cluster=cluster) as [(a, app_a), (b, _)],
            httpx.AsyncClient() as http,
        ):
            for base in (a, b):
                await until_redis_answers(http, base)
            headers = await initialize(http, a + "/mcp")
            async with raw_request(a, "POST", "/mcp", headers, long_ticks(3)) as running:
                events, _ = await running.read(stop=4)  # priming + 3 ticks: it runs on A
                assert len(app_a.statistics()) == 1
                cancel = request("notifications/cancelled", id=None, requestId=3, reason="enough")
                sent = await http.post(b + "/mcp", content=cancel, headers=headers)
                assert sent.status_code == 202
                rest, ended = await running.read()  # A ends the response: no result, no error
            assert ended
            seen = messages([*events, *rest])
            assert not [m for m in seen if "id" in m]
            ticks = [m for m in seen if m.get("method") == "notifications/progress"]
            assert 3 <= len(ticks) < 100_000
            await until_idle(app_a)  # the pipeline was cancelled, not left running
            # Its request id is free again on every instance.
            again = call(3, "ticker", {"count": 1, "interval_ms": 1})
            async with raw_request(b, "POST", "/mcp", headers, again) as retried:
                done, _ = await retried.read()
            assert messages(done)[-1]["result"]["structuredContent"] == {"count": 1}


async def test_a_delete_on_b_cancels_the_call_on_a_and_ends_its_streams(
    redis_server: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with two(redis_server.url, keys) as [(a, app_a), (b, _)], httpx.AsyncClient() as http:
            headers = await initialize(http, a + "/mcp")
            get_headers = {**headers, "accept": "text/event-stream"}
            get_headers.pop("content-type")
            async with (
                raw_request(a, "POST", "/mcp", headers, long_ticks(3)) as running,
                raw_request(a, "GET", "/mcp", get_headers) as listening,
            ):
                assert listening.status == 200
                await running.read(stop=3)
                deleted = await http.delete(b + "/mcp", headers=headers)
                assert deleted.status_code == 200
                rest, ended = await running.read()
                assert ended
                assert not [m for m in messages(rest) if "id" in m]
                _, get_ended = await listening.read()
                assert get_ended
            await until_idle(app_a)
            gone = await http.post(a + "/mcp", content=request("ping", id=9), headers=headers)
            assert gone.status_code == 404


async def test_an_answer_posted_to_b_reaches_the_tool_waiting_on_a(
    redis_server: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with two(redis_server.url, keys) as [(a, app_a), (b, _)], httpx.AsyncClient() as http:
            headers = await initialize(http, a + "/mcp", {"elicitation": {}})
            async with raw_request(a, "POST", "/mcp", headers, call(5, "greet", {})) as running:
                asked: list[Any] = []
                while not asked:
                    events, ended = await running.read(stop=1)
                    assert not ended
                    asked = [m for m in messages(events) if m.get("method") == "elicitation/create"]
                ask_id = asked[0]["id"]
                answer = orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": ask_id,
                        "result": {"action": "accept", "content": {"name": "Grace"}},
                    }
                )
                sent = await http.post(b + "/mcp", content=answer, headers=headers)
                assert sent.status_code == 202
                rest, ended = await running.read()
            assert ended
            final = messages(rest)[-1]
            assert final["id"] == 5
            assert final["result"]["content"][0]["text"] == "Hello, Grace!"
            # A repeat, now late, is ignored as on one instance: 202, nothing else.
            late = await http.post(b + "/mcp", content=answer, headers=headers)
            assert late.status_code == 202
            await until_idle(app_a)


async def test_a_call_whose_instance_is_killed_ends_with_the_lost_call_error_elsewhere(
    redis_server: RedisServer,
) -> None:
    lease = {"FLOWKIT_REDIS_LEASE_TTL": "1"}
    with trio.fail_after(60):
        async with (
            serve_process(redis_server.url, env=lease) as (a, process_a),
            serve_process(redis_server.url, env=lease) as (b, _),
            httpx.AsyncClient() as http,
        ):
            headers = await initialize(http, b + "/mcp")
            body = call(3, "ticker", {"count": 100_000, "interval_ms": 20})
            async with raw_request(a, "POST", "/mcp", headers, body) as running:
                events, _ = await running.read(stop=4)
                last = last_event_id(events)
                process_a.send_signal(signal.SIGKILL)  # mid-call, its response still open
                await process_a.wait()
            get_headers = {**headers, "accept": "text/event-stream", "last-event-id": last}
            get_headers.pop("content-type")
            seen: list[Any] = []
            with trio.fail_after(15):  # the lease (1 s) plus a follower's poll (1 s), bounded
                while not seen or "id" not in seen[-1]:
                    resumed = await http.get(b + "/mcp", headers=get_headers, timeout=20)
                    if resumed.status_code == 409:  # A's lease has not expired yet
                        await trio.sleep(0.1)
                        continue
                    assert resumed.status_code == 200, resumed.text
                    got = sse_events(resumed.content)
                    seen += messages(got)
                    get_headers["last-event-id"] = last_event_id(got, get_headers["last-event-id"])
            error = seen[-1]
            assert error["id"] == 3
            assert error["error"]["code"] == CALL_LOST
            assert "lost with instance" in error["error"]["message"]
            # Stored: a later resume from the same id replays it, and nothing follows.
            again = await http.get(b + "/mcp", headers={**get_headers, "last-event-id": last})
            assert messages(sse_events(again.content))[-1] == error


V = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": V,
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def test_notifications_raised_on_a_reach_the_listeners_on_b(
    redis_server: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with two(redis_server.url, keys) as [(_, app_a), (b, _)], httpx.AsyncClient() as http:
            headers = await initialize(http, b + "/mcp")
            subscribed = await http.post(
                b + "/mcp",
                content=request("resources/subscribe", uri="test://doc"),
                headers=headers,
            )
            assert subscribed.status_code == 200, subscribed.text
            get_headers = {**headers, "accept": "text/event-stream"}
            get_headers.pop("content-type")
            listen = request(
                "subscriptions/listen",
                id=5,
                notifications={"toolsListChanged": True, "resourceSubscriptions": ["test://doc"]},
                _meta=META,
            )
            listen_headers = {
                **JSON_HEADERS,
                "mcp-protocol-version": V,
                "mcp-method": "subscriptions/listen",
            }
            async with (
                raw_request(b, "GET", "/mcp", get_headers) as got,
                raw_request(b, "POST", "/mcp", listen_headers, listen) as listening,
            ):
                assert got.status == 200
                assert listening.status == 200
                await got.read(stop=1)  # the priming event
                await listening.read(stop=1)  # the acknowledgement
                # Raised on A, which has no listener at all.
                app_a.endpoint.tools.add(Tool.from_function(lambda: "new", name="new"))
                app_a.endpoint.resources.updated("test://doc")
                on_get, _ = await got.read(stop=2)
                on_listen, _ = await listening.read(stop=2)
            assert [m["method"] for m in messages(on_get)] == [
                "notifications/tools/list_changed",
                "notifications/resources/updated",
            ]
            assert messages(on_get)[1]["params"] == {"uri": "test://doc"}
            listened = messages(on_listen)
            assert [m["method"] for m in listened] == [
                "notifications/tools/list_changed",
                "notifications/resources/updated",
            ]
            assert listened[1]["params"]["uri"] == "test://doc"
