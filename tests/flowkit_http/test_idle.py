"""``flowkit_http._idle``: every connection's keep-alive timer on one task (mock clock).

The timers keep hypercorn's ``SingleTask`` contract as ``flowkit serve`` uses
it: ``restart`` runs the action once the connection has been idle for the
timeout from the latest restart, ``stop`` means it never runs, and a shutdown
runs every running timer's action at once. What they must not do is what
hypercorn's does per request: start a task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.trio.task_group import TaskGroup

from flowkit_http._idle import IdleTimer, IdleTimers


@asynccontextmanager
async def _serving() -> AsyncIterator[tuple[IdleTimers, TaskGroup]]:
    """The timers' task running, as ``serve()`` runs it, and a connection's group."""
    timers = IdleTimers(5.0)
    async with TaskGroup() as group, trio.open_nursery() as nursery:
        nursery.start_soon(timers.serve)
        yield timers, group
        nursery.cancel_scope.cancel()


class _Fired:
    def __init__(self) -> None:
        self.at: list[float] = []

    async def __call__(self) -> None:
        self.at.append(trio.current_time())


@asynccontextmanager
async def _one_idle_connection() -> AsyncIterator[tuple[IdleTimers, TaskGroup, IdleTimer, _Fired]]:
    """A connection idle from t=0: its timer restarted, its close recording when it ran."""
    fired = _Fired()
    async with _serving() as (timers, group):
        timer = timers.timer()
        await timer.restart(group, fired)
        yield timers, group, timer, fired


async def test_a_timer_fires_once_at_the_timeout_from_its_latest_restart(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with _one_idle_connection() as (timers, group, timer, fired):
        await trio.sleep(3)
        await timer.restart(group, fired)  # idle again from t=3: due at 8, not 5
        await trio.sleep(10)
        assert fired.at == [pytest.approx(8.0)]
        assert timers.heap == []  # one entry per timer, gone once it fired


async def test_a_stopped_timer_never_fires_and_holds_nothing_of_its_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with _one_idle_connection() as (timers, _, timer, fired):
        await trio.sleep(1)
        await timer.stop()  # a request's head
        assert timer.group is None
        assert timer.action is None
        await trio.sleep(20)
        assert fired.at == []
        assert timers.heap == []


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
    running, stopped, later = _Fired(), _Fired(), _Fired()
    async with _serving() as (timers, group):
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
