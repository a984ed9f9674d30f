"""Real ``flowkit.mcp`` endpoints sharing one Redis through the core's state boundary.

The test plays the HTTP adapter: before each request it loads from
:class:`RedisSharedStore` what ``Endpoint.state_keys`` names and passes it in;
after the request, and after a stream emitted (before its bytes would be
written), it applies ``Endpoint.take_changes``. Each instance is its own
Endpoint *and* its own RedisClient, as separate processes would be. Then any
instance serves any request of any session (issue 10, item 2): initialize on
A, tools/list on B, tools/call on C, the resumed GET on A, DELETE on B.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import orjson
import pytest
import trio

from flowkit.mcp import Action, EndpointConfig, Reply, Resume, StartCall, tool_result
from flowkit_redis import (
    Keys,
    RedisClient,
    RedisEventStore,
    RedisSessionStore,
    RedisSharedStore,
    StoreUnavailable,
    Wakeups,
)

from ...flowkit.mcp._client import FakeClock, make_endpoint, sse_data
from ._server import RedisServer

ACCEPT = b"application/json, text/event-stream"


class Instance:
    """One flowkit instance: its endpoint, kept in step with Redis around each request."""

    def __init__(self, name: str, client: RedisClient, keys: Keys, **config: Any) -> None:
        ids = itertools.count(1)
        self.endpoint = make_endpoint(
            EndpointConfig(**config),
            clock=FakeClock(),
            instance=name,
            new_session_id=lambda: f"{name}-{next(ids)}",
        )
        self.store = RedisSharedStore(
            RedisSessionStore(client, keys=keys, max_sessions=config.get("max_sessions", 10_000)),
            RedisEventStore(client, Wakeups(client), keys=keys),
            instance=name,
        )

    async def receive(
        self, method: str, headers: Any, body: bytes = b"", principal: str | None = None
    ) -> Action:
        keys = self.endpoint.state_keys(method, headers)
        loaded = await self.store.load(keys) if keys is not None else None
        action = self.endpoint.receive_request(method, headers, body, principal, loaded=loaded)
        await self.sync()
        return action

    async def sync(self) -> None:
        """What the adapter does before writing bytes a stream produced."""
        await self.store.apply(self.endpoint.take_changes())


class Session:
    """A client's session; each request names the instance it lands on."""

    def __init__(self, principal: str | None = None) -> None:
        self.principal = principal
        self.session_id: str | None = None
        self._ids = itertools.count(1)

    def headers(self, accept: bytes = ACCEPT) -> list[tuple[bytes, bytes]]:
        headers = [(b"host", b"localhost:8000"), (b"accept", accept)]
        if accept == ACCEPT:
            headers.append((b"content-type", b"application/json"))
        if self.session_id is not None:
            headers += [
                (b"mcp-session-id", self.session_id.encode()),
                (b"mcp-protocol-version", b"2025-11-25"),
            ]
        return headers

    async def request(
        self, on: Instance, method: str, params: Any = None, request_id: Any = None
    ) -> Action:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if request_id is not False:
            message["id"] = request_id if request_id is not None else next(self._ids)
        if params is not None:
            message["params"] = params
        return await on.receive("POST", self.headers(), orjson.dumps(message), self.principal)

    async def initialize(self, on: Instance) -> Reply:
        params = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        }
        reply = await self.request(on, "initialize", params)
        assert isinstance(reply, Reply)
        if reply.status == 200:
            self.session_id = dict(reply.headers)[b"mcp-session-id"].decode()
            done = await self.request(on, "notifications/initialized", request_id=False)
            assert done == Reply(202)
        return reply

    async def start(self, on: Instance, n: int = 3, request_id: Any = None) -> StartCall:
        params = {"name": "count", "arguments": {"n": n}, "_meta": {"progressToken": "p"}}
        action = await self.request(on, "tools/call", params, request_id)
        assert isinstance(action, StartCall), action
        return action

    async def get(self, on: Instance, last_event_id: bytes) -> Action:
        headers = [*self.headers(b"text/event-stream"), (b"last-event-id", last_event_id)]
        return await on.receive("GET", headers, b"", self.principal)

    async def delete(self, on: Instance) -> Action:
        return await on.receive("DELETE", self.headers(), b"", self.principal)


@asynccontextmanager
async def cluster(
    server: RedisServer, keys: Keys, n: int = 3, **config: Any
) -> AsyncIterator[list[Instance]]:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(RedisClient.connect(server.url)) for _ in range(n)
        ]
        for name, client in zip("abc", clients, strict=False):
            await client.redis.set(keys.lease(name), "1")  # alive (RedisShared.open renews it)
        yield [
            Instance(name, client, keys, **config)
            for name, client in zip("abc", clients, strict=False)
        ]


def event_id(event: bytes) -> bytes:
    return event.split(b"\n", 1)[0].removeprefix(b"id: ")


async def test_any_instance_serves_any_request_of_a_session(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with cluster(redis_server, keys) as (a, b, c):
        client = Session()
        assert (await client.initialize(a)).status == 200  # initialize + initialized on A
        listed = await client.request(b, "tools/list")
        assert isinstance(listed, Reply)
        assert listed.status == 200
        assert [tool["name"] for tool in orjson.loads(listed.body)["result"]["tools"]] == [
            "count",
            "add",
        ]
        call = await client.start(c, n=3, request_id=7)  # the call runs on C
        sent = [call.stream.open()[2]]
        sent += [call.stream.progress(i) for i in (1, 2, 3)]
        sent.append(call.stream.result(tool_result("done")))
        await c.sync()  # stored before the bytes are written
        c.endpoint.stream_finished(call.stream, disconnected=True)  # the client lost it
        await c.sync()
        resume = await client.get(a, event_id(sent[1]))  # resumed on A
        assert isinstance(resume, Resume)
        assert b"".join(resume.replay) == b"".join(sent[2:])  # exactly the later events
        assert sse_data(sent[-1])["id"] == 7
        assert (await client.delete(b)).status == 200  # type: ignore[union-attr]
        for instance in (a, b, c):
            gone = await client.request(instance, "ping")
            assert isinstance(gone, Reply)
            assert gone.status == 404


async def test_a_write_of_many_events_is_one_redis_entry(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with cluster(redis_server, keys, 1) as (a,):
        client = Session()
        await client.initialize(a)
        call = await client.start(a, n=50)
        call.stream.open()
        for i in range(1, 51):
            call.stream.progress(i)
        await a.sync()  # one socket write's worth of events
        stream_key = keys.stream(client.session_id or "", call.stream.stream_id)
        redis = a.store.events._client.redis
        assert await redis.xlen(stream_key) == 1


async def test_interleaved_streams_and_a_calls_end_in_one_apply(
    redis_server: RedisServer, keys: Keys
) -> None:
    """Each run of one stream's consecutive events is one entry; the end rides on the last."""
    async with cluster(redis_server, keys, 1) as (a,):
        client = Session()
        await client.initialize(a)
        one, two = await client.start(a), await client.start(a)
        await a.sync()
        one.stream.open()
        two.stream.open()
        one.stream.progress(1)
        one.stream.progress(2)
        two.stream.progress(1)
        one.stream.result(tool_result("done"))  # one: final event, then its StreamEnded
        await a.sync()
        sid = client.session_id or ""
        redis = a.store.events._client.redis
        assert await redis.xlen(keys.stream(sid, one.stream.stream_id)) == 3  # [0] [1 2] [3 end]
        assert await redis.xlen(keys.stream(sid, two.stream.stream_id)) == 2  # [0] [1]
        ended = await a.store.events.replay(sid, one.stream.stream_id, 1)
        assert ended is not None
        after = b"".join([event async for chunk in ended for event in chunk])
        assert [sse_data(e + b"\n\n").get("id") for e in after.split(b"\n\n")[:-1]] == [None, 2]
        assert ended.ended  # read from the flag on the final write: no entry of its own
        going = await a.store.events.replay(sid, two.stream.stream_id, -1)
        assert going is not None
        assert [chunk async for chunk in going]
        assert not going.ended


async def test_the_principal_binding_holds_on_every_instance(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with cluster(redis_server, keys, 2) as (a, b):
        alice = Session("alice")
        await alice.initialize(a)
        mallory = Session("mallory")
        mallory.session_id = alice.session_id
        refused = await mallory.request(b, "ping")
        assert isinstance(refused, Reply)
        assert refused.status == 404
        assert (await alice.request(b, "ping")).status == 200  # type: ignore[union-attr]


async def test_the_session_cap_counts_every_instance(redis_server: RedisServer, keys: Keys) -> None:
    async with cluster(redis_server, keys, 2, max_sessions=2) as (a, b):
        assert (await Session().initialize(a)).status == 200
        assert (await Session().initialize(b)).status == 200
        assert (await Session().initialize(b)).status == 503
        assert (await Session().initialize(a)).status == 503


async def test_a_request_id_running_elsewhere_is_in_flight_here(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with cluster(redis_server, keys, 2) as (a, b):
        client = Session()
        await client.initialize(a)
        await client.start(a, request_id=5)
        params = {"name": "count", "arguments": {"n": 1}}
        reply = await client.request(b, "tools/call", params, request_id=5)
        assert isinstance(reply, Reply)
        assert orjson.loads(reply.body)["error"]["code"] == -32600


async def test_a_stream_carried_on_one_instance_cannot_be_resumed_on_another(
    redis_server: RedisServer, keys: Keys
) -> None:
    async with cluster(redis_server, keys, 2) as (a, b):
        client = Session()
        await client.initialize(a)
        call = await client.start(b)
        sent = [call.stream.open()[2], call.stream.progress(1)]
        await b.sync()
        busy = await client.get(a, event_id(sent[0]))  # while B's response carries it
        assert isinstance(busy, Reply)
        assert busy.status == 409
        b.endpoint.stream_finished(call.stream, disconnected=True)
        await b.sync()
        resume = await client.get(a, event_id(sent[0]))
        assert isinstance(resume, Resume)
        assert b"".join(resume.replay) == sent[1]


async def test_a_resume_waits_while_a_live_instance_carries_the_stream(
    redis_server: RedisServer, keys: Keys, client: RedisClient
) -> None:
    """Rather than 409 at once (clients retry a 409 only a few times): until B lets
    go of the stream, or B's lease lapses (B died), or ``carried_wait`` passes."""
    with trio.fail_after(20):
        async with cluster(redis_server, keys, 2) as (a, b):
            a.store.carried_wait = 10
            for let_go in ("detach", "die"):
                session = Session()
                await session.initialize(a)
                call = await session.start(b)
                sent = [call.stream.open()[2], call.stream.progress(1)]
                await b.sync()
                got: list[Action] = []

                async def resume(
                    session: Session = session, first: bytes = sent[0], got: list[Action] = got
                ) -> None:
                    got.append(await session.get(a, event_id(first)))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(resume)
                    await trio.sleep(0.3)  # time passing, not a wait for an event:
                    assert not got  # still waiting, B carries it and B's lease lives
                    if let_go == "detach":  # B noticed its client left
                        b.endpoint.stream_finished(call.stream, disconnected=True)
                        await b.sync()
                    else:  # B died: its lease lapsed
                        await client.redis.delete([keys.lease("b")])
                [resumed] = got
                assert isinstance(resumed, Resume), resumed
                assert b"".join(resumed.replay) == sent[1]
            a.store.carried_wait = 0.3
            await client.redis.set(keys.lease("b"), "1")
            session = Session()
            await session.initialize(a)
            call = await session.start(b)
            first = call.stream.open()[2]
            await b.sync()
            start = trio.current_time()
            busy = await session.get(a, event_id(first))  # still carried after the wait
            assert isinstance(busy, Reply)
            assert busy.status == 409
            assert trio.current_time() - start >= 0.3


async def test_with_redis_down_a_request_fails_fast_and_works_once_it_is_back(
    own_redis: RedisServer, keys: Keys
) -> None:
    with trio.fail_after(20):
        async with cluster(own_redis, keys, 2) as (a, b):
            client = Session()
            await client.initialize(a)
            own_redis.stop()
            start = trio.current_time()
            with pytest.raises(StoreUnavailable) as info:  # the adapter's 503 + Retry-After
                await client.request(b, "ping")
            assert trio.current_time() - start < 2
            assert info.value.http_status == 503
            own_redis.start()  # empty: the session is gone, as after any loss of Redis
            await b.store.sessions._client.wait_up()
            assert (await client.request(b, "ping")).status == 404  # type: ignore[union-attr]
            assert (await Session().initialize(b)).status == 200
