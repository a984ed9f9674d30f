"""A session's ``resources/subscribe`` holds on every instance (real redis-server).

Two real HTTP instances (``two`` of test_control) share one Redis. The
subscribe is POSTed to A, the session's GET stream is on B: the update raised
on A or on B reaches B's stream; after an unsubscribe on A it no longer does,
and a session that never subscribed gets nothing. The store keeps the
subscriptions in the session's hash, so a session loaded anywhere has them,
and a save of the record (``logging/setLevel``) never undoes them. And the
official SDK 2.x client, through nginx round-robin over three instances,
subscribes and gets the updates raised on the instances its GET is not on.
"""

from __future__ import annotations

import asyncio
import warnings
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import trio
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning

from flowkit.mcp import Resource, Tool
from flowkit_http import MCPApp
from flowkit_redis import Keys, RedisClient, RedisSessionStore

from ..http._raw import initialize as initialize_session
from ..http._raw import messages, raw_request, request
from ..http._sdk import with_client
from ..http._serving import serving
from ._fleet import round_robin
from ._server import RedisClusterServers, RedisServer
from .test_control import two, until_redis_answers
from .test_http import make_server

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
    await subscribe_elsewhere(redis_server.url, keys)


async def test_on_a_cluster_the_subscriptions_travel_by_sharded_pub_sub(
    redis_cluster: RedisClusterServers, keys: Keys
) -> None:
    await subscribe_elsewhere(redis_cluster.url, keys, cluster=True)


async def subscribe_elsewhere(url: str, keys: Keys, *, cluster: bool = False) -> None:
    """Subscribed on A, the GET on B: updates raised on A and B reach it, until unsubscribed."""
    with trio.fail_after(30):
        async with (
            two(url, keys, cluster=cluster) as [(a, app_a), (b, app_b)],
            httpx.AsyncClient() as http,
        ):
            for base in (a, b):
                await until_redis_answers(http, base)
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

                # On one Redis, B gets the subscription's control message before
                # any broadcast published after it; on a Cluster the two channels
                # may live on two shards, which keep no order between them.
                if cluster:
                    await _until_subscribed(app_b, session_id, True)
                # Raised on A (no stream of the session there).
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


async def test_the_sdk_client_through_nginx_round_robin_gets_updates_raised_elsewhere(
    redis_server: RedisServer, nginx_binary: str, tmp_path: Path, keys: Keys
) -> None:
    """The SDK subscribes and opens its GET stream; nginx sends each request anywhere.

    ``listener`` answers which instance carries the GET stream once that
    instance's copy of the session has the subscription (served wherever
    nginx sent it); ``bump`` raises the update on a named instance. Each of
    the two instances the GET is not on raises one, and each reaches it.
    """
    apps: dict[str, MCPApp] = {}

    def listener() -> str:
        """The instance carrying a GET stream subscribed to the doc, or ''."""
        for name, app in apps.items():
            for session in app.endpoint.sessions:
                if session.listen is not None and URI in session.resource_subscriptions:
                    return name
        return ""

    def bump(on: str) -> str:
        """Raise notifications/resources/updated on instance ``on``."""
        apps[on].endpoint.resources.updated(URI)
        return on

    for name in "abc":
        apps[name] = MCPApp(make_server(redis_server.url, keys, name, tools=[listener, bump]))
        apps[name].endpoint.resources.add(Resource(URI, "doc", lambda: "v1"))
    updates: list[str] = []
    got = asyncio.Event()

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            updates.append(str(message.params.uri))
            got.set()

    async def text(client: Client, name: str, **arguments: Any) -> str:
        result = await client.call_tool(name, arguments)
        return str(result.content[0].text)  # type: ignore[union-attr]

    async def body(client: Client) -> list[str]:
        with warnings.catch_warnings():  # deprecated by the 2.x SDK: gone in 2026-07-28
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.subscribe_resource(URI)
        # The GET stream opens in the background after initialize.
        for _ in range(1000):  # bounded by the test's deadline anyway
            carrier = await text(client, "listener")
            if carrier:
                break
            await asyncio.sleep(0.02)
        raised = []
        for name in sorted(set(apps) - {carrier}):
            got.clear()
            raised.append(await text(client, "bump", on=name))
            await asyncio.wait_for(got.wait(), 10)
        return [carrier, *raised]

    with trio.fail_after(60):
        async with AsyncExitStack() as stack:
            bases = [await stack.enter_async_context(serving(app)) for app in apps.values()]
            proxy = await stack.enter_async_context(round_robin(nginx_binary, tmp_path, bases))
            carrier, *raised = await with_client(
                proxy + "/mcp", body, mode="legacy", message_handler=on_message
            )
    assert carrier not in raised
    assert len(raised) == 2
    assert updates == [URI, URI]  # one per update raised elsewhere, none lost
