"""flowkit's parking lot: first come, first served, and a cancel leaves no trace."""

from __future__ import annotations

import trio
import trio.testing

from flowkit._lot import Lot


async def _park_and_record(lot: Lot, name: str, woken: list[str]) -> None:
    await lot.park()
    woken.append(name)


async def test_unpark_wakes_the_longest_waiting_first() -> None:
    lot = Lot()
    woken: list[str] = []
    async with trio.open_nursery() as nursery:
        for name in "abc":
            nursery.start_soon(_park_and_record, lot, name, woken)
            await trio.testing.wait_all_tasks_blocked()
        assert len(lot) == 3
        assert lot
        lot.unpark()
        await trio.testing.wait_all_tasks_blocked()
        assert woken == ["a"]
        lot.unpark()
        await trio.testing.wait_all_tasks_blocked()
        assert woken == ["a", "b"]
        lot.unpark(count=5)  # more than wait: wakes those that do
        await trio.testing.wait_all_tasks_blocked()
        # (tasks woken together run in an order trio picks at random)
        assert woken == ["a", "b", "c"]
    assert len(lot) == 0
    assert not lot


async def test_unpark_all_and_unpark_of_an_empty_lot() -> None:
    lot = Lot()
    lot.unpark()  # nobody waits: nothing happens
    lot.unpark_all()
    woken: list[str] = []
    async with trio.open_nursery() as nursery:
        for name in "xy":
            nursery.start_soon(_park_and_record, lot, name, woken)
        await trio.testing.wait_all_tasks_blocked()
        lot.unpark_all()
    assert sorted(woken) == ["x", "y"]
    assert not lot


async def test_a_cancelled_wait_leaves_the_lot() -> None:
    lot = Lot()
    woken: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_park_and_record, lot, "first", woken)
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await lot.park()  # already cancelled: raises at once, not left parked
        assert scope.cancelled_caught
        assert len(lot) == 1
        inner = trio.CancelScope()

        async def cancelled_later() -> None:
            with inner:
                await lot.park()
            woken.append("cancelled")

        nursery.start_soon(cancelled_later)
        await trio.testing.wait_all_tasks_blocked()
        assert len(lot) == 2
        inner.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert len(lot) == 1
        assert woken == ["cancelled"]
        lot.unpark()  # the one left is the first parker
    assert woken == ["cancelled", "first"]
