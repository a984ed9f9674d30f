"""A session's ``resources/subscribe`` holds on every instance (real redis-server).

Two real HTTP instances (``two`` of test_control) share one Redis. The
subscribe is POSTed to A, the session's GET stream is on B: the update raised
on A or on B reaches B's stream; after an unsubscribe on A it no longer does,
and a session that never subscribed gets nothing. The store keeps the
subscriptions in the session's hash, so a session loaded anywhere has them,
and a save of the record (``logging/setLevel``) never undoes them.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from flowkit.mcp import Tool
from flowkit_http import MCPApp
from flowkit_redis import Keys, RedisClient, RedisSessionStore

from ..http._raw import initialize as initialize_session
from ..http._raw import messages, raw_request, request
from ._server import RedisServer
from .test_control import two

URI = "test://doc"


def _get_headers(headers: dict[str, str]) -> dict[str, str]:
    get_headers = {**headers, "accept": "text/event-stream"}
    get_headers.pop("content-type")
    return get_headers


async def _post(http: httpx.AsyncClient, base: str, headers: dict[str, str], body: bytes) -> Any:
    reply = await http.post(base + "/mcp", content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def _until_subscribed(app: MCPApp, session_id: str, subscribed: bool) -> None:
    """Until ``app``'s copy of the session has (or lacks) the subscription: the bus is async."""
    while True:  # polled: the app has no event for "a control message was handled"
        session = app.endpoint.sessions.get_any(session_id)
        if session is not None and (URI in session.resource_subscriptions) == subscribed:
            return
        await trio.sleep(0.01)


async def test_a_subscribe_posted_to_a_reaches_the_get_stream_on_b(
    redis_server: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with (
            two(redis_server.url, keys) as [(a, app_a), (b, app_b)],
            httpx.AsyncClient() as http,
        ):
            headers = await initialize_session(http, a + "/mcp")
            quiet = await initialize_session(http, a + "/mcp")  # never subscribes
            session_id = headers["mcp-session-id"]
            async with (
                raw_request(b, "GET", "/mcp", _get_headers(headers)) as got,
                raw_request(b, "GET", "/mcp", _get_headers(quiet)) as got_quiet,
            ):
                assert (got.status, got_quiet.status) == (200, 200)
                await got.read(stop=1)  # the priming events
                await got_quiet.read(stop=1)
                subscribe = request("resources/subscribe", uri=URI)
                assert (await _post(http, a, headers, subscribe))["result"] == {}

                # Raised on A (no stream of the session there): its broadcast
                # follows the subscription's control message to B, in order.
                app_a.endpoint.resources.updated(URI)
                on_get, _ = await got.read(stop=1)
                assert messages(on_get) == [
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/resources/updated",
                        "params": {"uri": URI},
                    }
                ]
                # Raised on B, which carries the stream.
                await _until_subscribed(app_b, session_id, True)
                app_b.endpoint.resources.updated(URI)
                on_get, _ = await got.read(stop=1)
                assert [m["params"] for m in messages(on_get)] == [{"uri": URI}]

                unsubscribe = request("resources/unsubscribe", uri=URI)
                assert (await _post(http, a, headers, unsubscribe))["result"] == {}
                await _until_subscribed(app_b, session_id, False)
                app_a.endpoint.resources.updated(URI)
                app_b.endpoint.resources.updated(URI)
                # A marker every GET stream gets, after what was raised before it.
                app_a.endpoint.tools.add(Tool.from_function(lambda: "new", name="new"))
                on_get, _ = await got.read(stop=1)
                on_quiet, _ = await got_quiet.read(stop=1)
            marker = [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}]
            assert messages(on_get) == marker  # unsubscribed: no update before it
            assert messages(on_quiet) == marker  # never subscribed: nothing but the marker


async def test_the_store_keeps_subscriptions_through_saves_and_loads_them_anywhere(
    redis_server: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with (
            two(redis_server.url, keys) as [(a, _), (b, app_b)],
            httpx.AsyncClient() as http,
            RedisClient.connect(redis_server.url) as client,
        ):
            headers = await initialize_session(http, a + "/mcp")
            session_id = headers["mcp-session-id"]
            for uri in (URI, "test://doc"):  # twice: one field, counted twice
                await _post(http, a, headers, request("resources/subscribe", uri=uri))
            # A save of the record (its log level) leaves the subscriptions alone.
            await _post(http, b, headers, request("logging/setLevel", level="debug"))
            store = RedisSessionStore(client, keys=keys)
            record = await store.load(session_id)
            assert record is not None
            assert (record.subscriptions, record.subscriptions_version) == ({URI}, 2)
            assert record.log_level == "debug"
            # B loaded it for the setLevel: its copy has the subscription too.
            session = app_b.endpoint.sessions.get_any(session_id)
            assert session is not None
            assert session.resource_subscriptions == {URI}
            await _post(http, b, headers, request("resources/unsubscribe", uri=URI))
            record = await store.load(session_id)
            assert record is not None
            assert (record.subscriptions, record.subscriptions_version) == (frozenset(), 3)
