"""check_operator must catch each kind of contract violation."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

import flowkit
from flowkit.testing import ContractViolation, check_operator


@attrs.define
class _MutableStats:
    items_in: int = 0


async def _forward_all(receive: Any, send: Any) -> None:
    async for item in receive:
        await send.send(item)


async def good(receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    async with receive, send:
        task_status.started()
        try:
            await _forward_all(receive, send)
        except trio.BrokenResourceError:
            return


async def keeps_upstream_open(
    receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    async with send:
        task_status.started()
        await _forward_all(receive, send)


async def forgets_to_flush(
    receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    async with receive, send:
        task_status.started()
        pending = None
        async for item in receive:
            if pending is not None:
                await send.send(pending)
            pending = item  # never sent at the end


async def swallows_crash(
    receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    async with receive, send:
        task_status.started()
        try:
            await _forward_all(receive, send)
        except (flowkit.StreamAborted, trio.BrokenResourceError):
            return  # wrong for StreamAborted: a crash turned into a clean end


async def raises_on_abandonment(
    receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    async with receive, send:
        task_status.started()
        await _forward_all(receive, send)


class _MutableStatsOp:
    def statistics(self) -> _MutableStats:
        return _MutableStats()

    async def __call__(
        self, receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        await good(receive, send, task_status=task_status)


async def test_a_correct_operator_passes() -> None:
    assert await check_operator(lambda: good, [1, 2, 3], statistics=False) == [1, 2, 3]


@pytest.mark.parametrize(
    ("op", "clause"),
    [
        (keeps_upstream_open, "owns both ends"),
        (forgets_to_flush, "end propagates forward"),
        (swallows_crash, "never as a clean end"),
        (raises_on_abandonment, "closed downstream makes it return normally"),
    ],
)
async def test_each_violation_is_named(op: Any, clause: str) -> None:
    with pytest.raises(ContractViolation, match=clause):
        await check_operator(lambda: op, [1, 2, 3], statistics=False)


async def test_mutable_statistics_are_rejected() -> None:
    with pytest.raises(ContractViolation, match="frozen attrs snapshot"):
        await check_operator(_MutableStatsOp, [1, 2, 3])


async def test_bound_violation_is_reported() -> None:
    with pytest.raises(ContractViolation, match="bounds are in items"):
        await check_operator(lambda: flowkit.buffer(8), list(range(20)), max_buffered=0)


async def test_needs_two_inputs() -> None:
    with pytest.raises(ValueError, match="two inputs"):
        await check_operator(lambda: good, [1])
