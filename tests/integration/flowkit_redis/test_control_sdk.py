"""The control bus with the official SDK clients, through nginx round-robin (issue 11, item 8).

test_control.py sends each control message by hand to the other of two
instances. Here the official clients send what they send, through nginx
round-robin (per request, no stickiness) in front of three instances sharing
one real redis-server, and each instance records which JSON-RPC message it
received (:class:`Recorder`), so a test can tell that the message about a call
landed on another instance than the one running it:

- **a cancel**: the SDK 2.x client cancels a running ``call_tool`` (anyio
  cancellation: the SDK sends ``notifications/cancelled`` itself); the call's
  pipeline stops on its instance, which counts it cancelled;
- **a DELETE**: leaving the client ends the session while its call runs; the
  call is cancelled there (not left running detached) and its streams end;
- **elicitation, sampling and roots answers** from the SDK 2.x client's
  callbacks, and from an SDK 1.x client process: the tool gets them and its
  result comes back;
- **an instance killed mid-call** (a real ``flowkit serve --redis`` process,
  SIGKILL by PID): the SDK 2.x client's own resume (GET with
  ``Last-Event-ID``, which nginx sends to a live instance) ends with the
  lost-call error, -32010, raised as ``MCPError``, within a bound;
- **``--workers 2`` under a mixed load**: 2025-era SDK sessions with progress,
  2026-07-28-era SDK calls, an SDK cancel and a raw resume at once; every
  result right, both workers served some (their own ``/metrics``).

Round-robin may send a message to the instance running the call (one time in
three); those tests repeat, a bounded number of times, until one lands
elsewhere, and check every attempt.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs
import httpx
import orjson
import pytest
import trio
from mcp import Client, MCPError

from flowkit.mcp import EndpointConfig, ToolContext
from flowkit.mcp._errors import CALL_LOST
from flowkit_http import MCPApp
from flowkit_redis import Keys
from flowkit_redis._shared import DEFAULT_LEASE_TTL

from ..http._raw import call, initialize, last_event_id, messages, raw_request, sse_events
from ..http._sdk import on_asyncio, with_client
from ..http._serving import serving
from ..http.test_asks import CALLBACKS, EXPECTED, SDK1_ASKS, booking
from ..http.test_sdk1_client import sdk1_python  # noqa: F401  (the SDK 1.x venv fixture)
from ._fleet import (
    active_calls,
    round_robin,
    serve_process,
    ticker_calls,
    two_free_ports,
    until_idle,
    workers,
)
from ._server import RedisServer
from .test_http import make_server

T = TypeVar("T")
LONG = {"count": 100_000, "interval_ms": 10}
ATTEMPTS = 6  # a message lands elsewhere 2 times in 3: all six on the same instance is 1 in 729


@attrs.frozen
class Received:
    """One request an instance received: its HTTP verb and, for a POST, its JSON-RPC message.

    ``method`` is ``"response"`` for a client's answer; ``id`` is the
    request's id, a cancel's ``requestId``, or the answer's id.
    """

    instance: str
    verb: str
    method: str | None
    id: Any
    session: str | None


@attrs.define
class Recorder:
    """An ASGI wrapper around one instance's app: appends what it receives to ``log``."""

    instance: str
    app: MCPApp
    log: list[Received]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/mcp":
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(b"mcp-session-id")
        session = raw.decode() if raw is not None else None
        verb = scope["method"]
        if verb != "POST":
            self.log.append(Received(self.instance, verb, None, None, session))
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def receiving() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    self.log.append(self._received(verb, bytes(body), session))
            return message

        await self.app(scope, receiving, send)

    def _received(self, verb: str, body: bytes, session: str | None) -> Received:
        message = orjson.loads(body)
        method = message.get("method", "response")
        id = message.get("id")
        if method == "notifications/cancelled":
            id = message["params"]["requestId"]
        return Received(self.instance, verb, method, id, session)


@attrs.frozen
class Front:
    """Three in-process instances behind nginx: its MCP URL, the apps by name, their log."""

    url: str
    apps: dict[str, MCPApp]
    log: list[Received]

    def running(self) -> list[str]:
        """The instances running a call now (called on the trio thread)."""
        return [name for name, app in self.apps.items() if app.statistics()]

    def cancelled(self, name: str) -> int:
        """``ticker`` calls ``name`` ended as cancelled."""
        tools = self.apps[name].telemetry.snapshot(self.apps[name]).tools
        return sum(t.calls["cancelled"] for t in tools if t.tool == "ticker")


async def book(city: str, ctx: ToolContext) -> str:
    """Ask the user, then the LLM, then the roots."""
    return await booking(city, ctx)


@asynccontextmanager
async def front(
    redis_url: str, keys: Keys, nginx_binary: str, tmp_path: Path
) -> AsyncIterator[Front]:
    log: list[Received] = []
    config = EndpointConfig(request_state_keys=(b"k" * 32,))
    apps = {
        name: MCPApp(make_server(redis_url, keys, name, tools=[book], config=config))
        for name in "abc"
    }
    async with AsyncExitStack() as stack:
        bases = [
            await stack.enter_async_context(serving(Recorder(name, app, log)))
            for name, app in apps.items()
        ]
        proxy = await stack.enter_async_context(round_robin(nginx_binary, tmp_path, bases))
        yield Front(proxy + "/mcp", apps, log)


def on_trio(function: Callable[[], T]) -> T:
    """Run ``function`` on the test's trio thread, from the SDK's asyncio thread."""
    return trio.from_thread.run_sync(function)


async def until(predicate: Callable[[], bool], *, within: float = 10) -> None:
    """From the SDK's thread: poll ``predicate`` on the trio thread until true, with a deadline."""
    with anyio.fail_after(within):
        while True:
            if on_trio(predicate):
                return
            await anyio.sleep(0.01)


def progressed(ticks: int) -> tuple[anyio.Event, Callable[..., Awaitable[None]]]:
    """An event set once ``ticks`` progress notifications arrived, and the SDK callback."""
    seen = anyio.Event()
    count = 0

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        nonlocal count
        count += 1
        if count >= ticks:
            seen.set()

    return seen, on_progress


def landed(log: Sequence[Received], method: str, id: Any = None) -> list[str]:
    """Where the ``method`` messages (about request ``id``, if given) landed."""
    return [r.instance for r in log if r.method == method and (id is None or r.id == id)]


def landed_verb(log: Sequence[Received], verb: str) -> list[str]:
    """Where the requests of HTTP ``verb`` landed."""
    return [r.instance for r in log if r.verb == verb]


async def until_no_streams(app: MCPApp) -> None:
    """Until ``app`` has no SSE response open (bounded by the test's deadline)."""
    while True:  # polled: the app has no event for "the last response ended"
        if not app.telemetry.snapshot(app).streams:
            return
        await trio.sleep(0.01)


async def test_an_sdk_cancel_through_nginx_stops_the_call_on_the_instance_running_it(
    redis_server: RedisServer, keys: Keys, nginx_binary: str, tmp_path: Path
) -> None:
    async def cancel_one(client: Client, fleet: Front) -> tuple[str, str]:
        """A long call, cancelled once it ticked: (where it ran, where its cancel landed)."""
        start = on_trio(lambda: len(fleet.log))
        ticked, on_progress = progressed(3)
        async with anyio.create_task_group() as group:
            group.start_soon(
                lambda: client.call_tool("ticker", LONG, progress_callback=on_progress)
            )
            await ticked.wait()
            [running] = on_trio(fleet.running)
            before = on_trio(lambda: fleet.cancelled(running))
            group.cancel_scope.cancel()  # the SDK sends notifications/cancelled itself
        await until(lambda: not fleet.running())  # no call left running anywhere
        await until(lambda: fleet.cancelled(running) == before + 1)  # stopped as cancelled
        seen = on_trio(lambda: fleet.log[start:])
        [called] = landed(seen, "tools/call")
        [call_id] = [r.id for r in seen if r.method == "tools/call"]
        [cancelled] = landed(seen, "notifications/cancelled", call_id)
        assert called == running
        return called, cancelled

    async def body(client: Client, fleet: Front) -> list[tuple[str, str]]:
        attempts = [await cancel_one(client, fleet)]
        while len(attempts) < ATTEMPTS and attempts[-1][0] == attempts[-1][1]:
            attempts.append(await cancel_one(client, fleet))
        return attempts

    with trio.fail_after(90):
        async with front(redis_server.url, keys, nginx_binary, tmp_path) as fleet:
            attempts = await with_client(fleet.url, lambda client: body(client, fleet))
    assert attempts[-1][0] != attempts[-1][1], attempts  # the last cancel landed elsewhere


async def test_leaving_the_sdk_client_deletes_the_session_and_cancels_its_call_elsewhere(
    redis_server: RedisServer, keys: Keys, nginx_binary: str, tmp_path: Path
) -> None:
    """The SDK sends DELETE when its client is left; the call runs on another instance."""

    async def attempt(fleet: Front) -> str:
        """One session: a long call, then the client is left while it runs."""
        errors: list[MCPError] = []

        async def calling(client: Client, on_progress: Any) -> None:
            try:
                await client.call_tool("ticker", LONG, progress_callback=on_progress)
            except MCPError as error:  # the session ends under the call
                errors.append(error)

        running = ""
        with anyio.fail_after(20):
            async with (
                anyio.create_task_group() as group,
                Client(fleet.url, mode="legacy") as client,
            ):
                ticked, on_progress = progressed(3)
                group.start_soon(calling, client, on_progress)
                await ticked.wait()
                [running] = on_trio(fleet.running)
        assert errors  # the call ended with the session, not with a result
        return running

    with trio.fail_after(90):
        async with (
            front(redis_server.url, keys, nginx_binary, tmp_path) as fleet,
            httpx.AsyncClient() as http,
        ):
            for _ in range(ATTEMPTS):
                start = len(fleet.log)
                before = sum(fleet.cancelled(name) for name in fleet.apps)
                running = await on_asyncio(attempt(fleet))
                seen = fleet.log[start:]
                [deleted] = landed_verb(seen, "DELETE")
                assert landed(seen, "tools/call") == [running]
                assert not landed(seen, "notifications/cancelled")  # the DELETE did it
                await until_idle(fleet.apps[running])  # cancelled, not left running detached
                assert sum(fleet.cancelled(name) for name in fleet.apps) == before + 1
                for app in fleet.apps.values():  # its GET stream and its call's stream ended
                    await until_no_streams(app)
                [session] = {r.session for r in seen if r.verb == "DELETE"}
                assert session is not None
                ping = b'{"jsonrpc":"2.0","id":9,"method":"ping"}'
                headers = {
                    "content-type": "application/json",
                    "accept": "application/json, text/event-stream",
                    "mcp-session-id": session,
                    "mcp-protocol-version": "2025-11-25",
                }
                for _ in fleet.apps:  # gone everywhere: three pings, one per instance
                    gone = await http.post(fleet.url, content=ping, headers=headers)
                    assert gone.status_code == 404, gone.text
                if deleted != running:
                    break
            assert deleted != running


async def test_sdk_answers_through_nginx_reach_the_tool_asking_on_another_instance(
    redis_server: RedisServer, keys: Keys, nginx_binary: str, tmp_path: Path
) -> None:
    """Elicitation, sampling and roots answers from the SDK 2.x client's callbacks."""

    async def book_one(client: Client, fleet: Front) -> tuple[str, list[str]]:
        """One call of ``book``: (where it ran, where its three answers landed)."""
        start = on_trio(lambda: len(fleet.log))
        result = await client.call_tool("book", {"city": "Oslo"})
        assert not result.is_error, result
        assert result.content[0].text == EXPECTED  # type: ignore[union-attr]
        seen = on_trio(lambda: fleet.log[start:])
        [called] = landed(seen, "tools/call")
        answered = landed(seen, "response")
        assert len(answered) == 3  # one answer for each question
        return called, answered

    async def body(client: Client, fleet: Front) -> list[tuple[str, list[str]]]:
        attempts = [await book_one(client, fleet)]
        while len(attempts) < ATTEMPTS and not set(attempts[-1][1]) - {attempts[-1][0]}:
            attempts.append(await book_one(client, fleet))
        return attempts

    with trio.fail_after(90):
        async with front(redis_server.url, keys, nginx_binary, tmp_path) as fleet:
            attempts = await with_client(fleet.url, lambda client: body(client, fleet), **CALLBACKS)
    called, answered = attempts[-1]
    assert set(answered) - {called}, attempts  # an answer landed on another instance


async def test_sdk_1x_answers_through_nginx_reach_the_tool_asking_on_another_instance(
    redis_server: RedisServer,
    keys: Keys,
    nginx_binary: str,
    tmp_path: Path,
    sdk1_python: Path,  # noqa: F811  (the imported fixture)
) -> None:
    """The same with the SDK 1.x client process (tests/integration/http/sdk1/asks.py)."""
    with trio.fail_after(180):
        async with front(redis_server.url, keys, nginx_binary, tmp_path) as fleet:
            for _ in range(ATTEMPTS):
                start = len(fleet.log)
                done = await trio.run_process(
                    [str(sdk1_python), str(SDK1_ASKS), fleet.url],
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
                assert done.returncode == 0, done.stderr.decode()[-3000:]
                seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
                assert seen == {"protocol": "2025-11-25", "is_error": False, "text": EXPECTED}
                [called] = landed(fleet.log[start:], "tools/call")
                answered = landed(fleet.log[start:], "response")
                assert len(answered) == 3
                if set(answered) - {called}:
                    break
            assert set(answered) - {called}


@pytest.mark.parametrize("lease_ttl", [1, DEFAULT_LEASE_TTL])
async def test_an_instance_killed_mid_call_ends_the_sdk_resume_with_the_lost_call_error(
    redis_server: RedisServer, nginx_binary: str, tmp_path: Path, lease_ttl: float
) -> None:
    """SIGKILL by PID; nginx routes the SDK's resume around the dead upstream.

    The resume lands while the dead instance's lease still lives: it waits
    for the lease to lapse (the SDK retries a refused resume only twice, a
    second apart), then follows the stream to the lost-call error. Both the
    default lease (10 s) and a short one.
    """
    lease = {"FLOWKIT_REDIS_LEASE_TTL": str(lease_ttl)}
    ticks: list[float] = []

    async def body(client: Client) -> MCPError:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            ticks.append(value)

        try:
            await client.call_tool("ticker", LONG, progress_callback=on_progress)
        except MCPError as error:
            return error
        raise AssertionError("a call of 100,000 ticks ended while its instance was killed")

    async def kill_the_one_running_it(
        http: httpx.AsyncClient, instances: dict[str, trio.Process]
    ) -> None:
        while True:
            for base, process in instances.items():
                if len(ticks) >= 3 and active_calls((await http.get(base + "/metrics")).text):
                    os.kill(process.pid, signal.SIGKILL)  # by PID, mid-call
                    await process.wait()
                    return
            await trio.sleep(0.01)

    with trio.fail_after(90):
        async with AsyncExitStack() as stack:
            instances = dict(
                [
                    await stack.enter_async_context(serve_process(redis_server.url, env=lease))
                    for _ in range(3)
                ]
            )
            proxy = await stack.enter_async_context(
                round_robin(nginx_binary, tmp_path, list(instances))
            )
            http = await stack.enter_async_context(httpx.AsyncClient())
            errors: list[MCPError] = []

            async def client() -> None:
                errors.append(await with_client(proxy + "/mcp", body))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(client)
                await kill_the_one_running_it(http, instances)
                killed_at = trio.current_time()
            # Bounded: the SDK's reconnect delay (1 s) + the lease + a follower's poll (1 s).
            assert trio.current_time() - killed_at < 1 + lease_ttl + 1 + 3
    [error] = errors
    assert error.code == CALL_LOST, error
    assert "lost with instance" in error.error.message
    assert ticks == [float(i) for i in range(1, len(ticks) + 1)]


async def test_two_workers_serve_a_mixed_load_of_sdk_sessions_cancels_and_resumes(
    redis_server: RedisServer,
) -> None:
    observe = two_free_ports()
    with trio.fail_after(120):
        async with workers(redis_server.url, observe) as (_, url, _), httpx.AsyncClient() as http:
            pages = [f"http://127.0.0.1:{observe + i}/metrics" for i in range(2)]
            made = 0
            per_worker = [0, 0]
            for _ in range(5):  # rounds until each worker served some (bounded)
                async with trio.open_nursery() as nursery:
                    for _ in range(4):
                        nursery.start_soon(
                            partial(with_client, url, progress_session, mode="legacy")
                        )
                        nursery.start_soon(
                            partial(with_client, url, stateless_call, mode="2026-07-28")
                        )
                    nursery.start_soon(partial(with_client, url, cancelled_session, mode="legacy"))
                    nursery.start_soon(resumed_call, http, url)
                made += 4 + 4 + 1 + 1
                while True:  # every call counted, the cancelled one too, once it ended
                    per_worker = [ticker_calls((await http.get(p)).text) for p in pages]
                    if sum(per_worker) == made:
                        break
                    assert sum(per_worker) < made, per_worker
                    await trio.sleep(0.05)
                if all(per_worker):
                    break
            assert all(per_worker), per_worker
            cancelled = [ticker_calls((await http.get(p)).text, "cancelled") for p in pages]
            assert sum(cancelled) == made // 10  # one per round


async def progress_session(client: Client) -> None:
    """A 2025-era session: a call with every progress notification."""
    values: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        values.append(value)

    result = await client.call_tool(
        "ticker", {"count": 20, "interval_ms": 10}, progress_callback=on_progress
    )
    assert result.structured_content == {"count": 20}, result
    assert values == [float(i) for i in range(1, 21)]


async def stateless_call(client: Client) -> None:
    """A 2026-07-28-era call: no session at all."""
    result = await client.call_tool("ticker", {"count": 5, "interval_ms": 10})
    assert result.structured_content == {"count": 5}, result


async def cancelled_session(client: Client) -> None:
    """A 2025-era session that cancels its call once it ticked."""
    ticked, on_progress = progressed(3)
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: client.call_tool("ticker", LONG, progress_callback=on_progress))
        await ticked.wait()
        group.cancel_scope.cancel()


async def resumed_call(http: httpx.AsyncClient, url: str) -> None:
    """Raw: a call's response cut after 4 events, resumed by GET with Last-Event-ID."""
    base = url.removesuffix("/mcp")
    headers = await initialize(http, url)
    body = call(3, "ticker", {"count": 30, "interval_ms": 20})
    async with raw_request(base, "POST", "/mcp", headers, body) as response:
        events, _ = await response.read(stop=4)
    seen = messages(events)
    last = last_event_id(events)
    get_headers = {k: v for k, v in headers.items() if k != "content-type"}
    get_headers["accept"] = "text/event-stream"
    while not seen or "result" not in seen[-1]:
        answer = await http.get(url, headers={**get_headers, "last-event-id": last}, timeout=20)
        if answer.status_code == 409:  # the worker running it has not seen the disconnect yet
            await trio.sleep(0.02)
            continue
        assert answer.status_code == 200, answer.text
        seen += messages(sse_events(answer.content))
        last = last_event_id(sse_events(answer.content), last)
    ticks = [m["params"]["progress"] for m in seen if m.get("method") == "notifications/progress"]
    assert ticks == list(range(1, 31))
    assert seen[-1]["result"]["structuredContent"] == {"count": 30}
