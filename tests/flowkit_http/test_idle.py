"""``flowkit_http._idle``: every connection's keep-alive timer on one task (mock clock).

The timers keep hypercorn's ``SingleTask`` contract as ``flowkit serve`` uses
it: ``restart`` runs the action once the connection has been idle for the
timeout from the latest restart, ``stop`` means it never runs, and a shutdown
runs every running timer's action at once. What they must not do is what
hypercorn's does per request: start a task.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio.task_group import TaskGroup
from hypercorn.utils import wrap_app

from flowkit_http import ServeLimits
from flowkit_http._idle import IdleTimers
from flowkit_http._serve import _Server, _Stream, _TCPServer


class _Fired:
    def __init__(self) -> None:
        self.at: list[float] = []

    async def __call__(self) -> None:
        self.at.append(trio.current_time())


async def test_a_timer_fires_once_at_the_timeout_from_its_latest_restart(
    autojump_clock: trio.abc.Clock,
) -> None:
    timers = IdleTimers(5.0)
    fired = _Fired()
    async with TaskGroup() as group, trio.open_nursery() as nursery:
        nursery.start_soon(timers.serve)
        timer = timers.timer()
        await timer.restart(group, fired)
        await trio.sleep(3)
        await timer.restart(group, fired)  # idle again from t=3: due at 8, not 5
        await trio.sleep(10)
        assert fired.at == [pytest.approx(8.0)]
        assert timers.heap == []  # one entry per timer, gone once it fired
        nursery.cancel_scope.cancel()


async def test_a_stopped_timer_never_fires_and_holds_nothing_of_its_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    timers = IdleTimers(5.0)
    fired = _Fired()
    async with TaskGroup() as group, trio.open_nursery() as nursery:
        nursery.start_soon(timers.serve)
        timer = timers.timer()
        await timer.restart(group, fired)
        await trio.sleep(1)
        await timer.stop()  # a request's head
        assert timer.group is None
        assert timer.action is None
        await trio.sleep(20)
        assert fired.at == []
        assert timers.heap == []
        nursery.cancel_scope.cancel()


async def test_timers_fire_in_deadline_order_and_each_restart_costs_no_task(
    autojump_clock: trio.abc.Clock,
) -> None:
    timers = IdleTimers(5.0)
    fired: list[int] = []

    def action(i: int) -> Any:
        async def close() -> None:
            fired.append(i)

        return close

    async with TaskGroup() as group, trio.open_nursery() as nursery:
        nursery.start_soon(timers.serve)
        await trio.testing.wait_all_tasks_blocked()
        tasks = len(nursery.child_tasks)
        started = [timers.timer() for _ in range(3)]
        for i in (2, 0, 1):
            await started[i].restart(group, action(i))
            for _ in range(100):  # a request, then its response's end, 100 times
                await started[i].stop()
                await started[i].restart(group, action(i))
            await trio.sleep(1)
        assert len(nursery.child_tasks) == tasks  # no task per restart
        assert len(group._nursery.child_tasks) == 0  # type: ignore[union-attr]
        assert len(timers.heap) == 3
        await trio.sleep(10)
        assert fired == [2, 0, 1]
        nursery.cancel_scope.cancel()


async def test_a_shutdown_fires_running_timers_at_once_and_later_restarts_too(
    autojump_clock: trio.abc.Clock,
) -> None:
    timers = IdleTimers(5.0)
    running, stopped, later = _Fired(), _Fired(), _Fired()
    async with TaskGroup() as group, trio.open_nursery() as nursery:
        nursery.start_soon(timers.serve)
        await timers.timer().restart(group, running)
        idle_then_busy = timers.timer()
        await idle_then_busy.restart(group, stopped)
        await idle_then_busy.stop()
        await trio.sleep(1)
        timers.terminate()
        await trio.testing.wait_all_tasks_blocked()
        assert running.at == [pytest.approx(1.0)]
        assert stopped.at == []
        await timers.timer().restart(group, later)  # a response ending after the shutdown
        await trio.testing.wait_all_tasks_blocked()
        assert later.at == [pytest.approx(1.0)]
        nursery.cancel_scope.cancel()


async def test_a_timer_due_after_its_connection_ended_does_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    timers = IdleTimers(5.0)
    fired = _Fired()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.serve)
        async with TaskGroup() as group:
            timer = timers.timer()
            await timer.restart(group, fired)
        await trio.sleep(10)  # the group is closed to new tasks when the timer fires
        assert fired.at == []
        nursery.cancel_scope.cancel()


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})


_REQUEST = b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"


async def test_a_served_connection_idle_for_the_timeout_is_closed_and_a_busy_one_is_not(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Through hypercorn's protocol: requests restart the timer, the timeout closes."""
    config = Config()
    server = _Server(wrap_app(_answer, 2**20, "asgi"), config, {}, ServeLimits())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        raw, _ = listener.accept()
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(client))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.idle.serve)
        stream = _Stream(raw)
        server.live.add(stream)
        nursery.start_soon(server._connection, stream)
        for _ in range(3):  # each request within the timeout of the last response
            await trio.sleep(config.keep_alive_timeout - 1)
            await peer.send_all(_REQUEST)
            received = b""
            while not received.endswith(b"{}"):
                chunk = await peer.receive_some()
                assert chunk, "closed while in use"
                received += chunk
        last = trio.current_time()
        assert await peer.receive_some() == b""  # then idle: closed by the timer
        assert trio.current_time() == pytest.approx(last + config.keep_alive_timeout)
        await trio.testing.wait_all_tasks_blocked()
        assert stream not in server.live
        nursery.cancel_scope.cancel()
    await peer.aclose()


async def test_the_close_leaves_a_connection_whose_request_arrived_as_it_fired() -> None:
    server = _Server(wrap_app(_answer, 2**20, "asgi"), Config(), {}, ServeLimits())
    ours, theirs = socket.socketpair()
    stream = _Stream(ours)
    driver = _TCPServer(server.app, Config(), server.context, {}, stream, timers=server.idle)  # type: ignore[arg-type]
    driver._busy = True  # hypercorn said "not idle" before the fired close ran
    await driver._idle_timeout()
    assert not stream.ending
    assert not stream.closed
    ours.close()
    theirs.close()
