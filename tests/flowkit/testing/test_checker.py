"""check_operator must catch each kind of contract violation."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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


# ------------------------------------------------ every step ends (issue 16.3)


def debounce(delay: float) -> Any:
    """A user's debounce: emit the latest item once upstream is quiet for ``delay``."""

    async def op(receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with receive, send:
            task_status.started()
            pending: list[Any] = []
            deadline = math.inf
            try:
                while True:
                    with trio.move_on_at(deadline):
                        try:
                            pending[:] = [await receive.receive()]
                        except trio.EndOfChannel:
                            break
                        deadline = trio.current_time() + delay
                        continue
                    await send.send(pending.pop())  # quiet for ``delay``: emit
                    deadline = math.inf
                if pending:
                    await send.send(pending.pop())  # flush at the end
            except trio.BrokenResourceError:
                return

    return op


@asynccontextmanager
async def hang_guard(seconds: float = 10) -> AsyncIterator[None]:
    """Fail instead of hanging forever, even when virtual time stands still.

    The watchdog waits in a worker thread, so it counts as blocked and does
    not hold up the autojump clock; a check spinning at 100 % CPU without
    letting virtual time move is cancelled after ``seconds`` of real time.
    It only turns a hang into a failure: nothing is timed with it.
    """
    hung = False
    async with trio.open_nursery() as nursery:

        async def watchdog() -> None:
            nonlocal hung
            await trio.to_thread.run_sync(time.sleep, seconds, abandon_on_cancel=True)
            hung = True
            nursery.cancel_scope.cancel()

        nursery.start_soon(watchdog)
        yield
        nursery.cancel_scope.cancel()
    assert not hung, f"still running after {seconds} s of real time: the check hangs"


async def test_a_debounce_checked_under_autojump_ends(autojump_clock: Any) -> None:
    # docs/operators.md advises checking timed operators under autojump: the
    # abandonment step used to spin forever here, because this operator only
    # sends after a quiet period, which a feed that never pauses never gave it.
    async with hang_guard():
        outputs = await check_operator(
            lambda: debounce(0.5), [1, 2, 3], expected=[3], statistics=False
        )
    assert outputs == [3]


async def lingers_after_abandonment(
    receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Drains upstream forever once downstream is gone, instead of returning."""
    async with receive, send:
        task_status.started()
        try:
            await _forward_all(receive, send)
        except trio.BrokenResourceError:
            async for _ in receive:
                pass


async def test_a_step_that_cannot_progress_fails_naming_it(autojump_clock: Any) -> None:
    # The old feed never ended, so this spun forever; now the feed is
    # bounded, the upstream then stays open and quiet, and the step's time
    # limit (virtual: no real time passes) names it.
    async with hang_guard():
        with pytest.raises(
            ContractViolation, match=r"step 'abandonment'.*did not finish within 60 s"
        ):
            await check_operator(lambda: lingers_after_abandonment, [1, 2, 3], statistics=False)
        # The documented way out, where an operator's semantics justify it:
        await check_operator(
            lambda: lingers_after_abandonment, [1, 2, 3], statistics=False, skip={"abandonment"}
        )


async def test_time_limits_are_per_step_and_adjustable(autojump_clock: Any) -> None:
    # One item an hour: the plain run needs two virtual hours.
    with pytest.raises(ContractViolation, match=r"step 'end'.*time_limit=\{'end': seconds\}"):
        await check_operator(lambda: flowkit.throttle(1, per=3600), [1, 2, 3])
    await check_operator(lambda: flowkit.throttle(1, per=3600), [1, 2, 3], time_limit=3 * 3600)
    # A mapping raises the named steps' limits; the others keep 60 s.
    with pytest.raises(ContractViolation, match=r"step 'abandonment'.*within 60 s"):
        await check_operator(
            lambda: flowkit.throttle(1, per=3600),
            [1, 2, 3],
            time_limit={"end": 3 * 3600, "acks": 3 * 3600, "cancellation": 3 * 3600},
        )


async def test_unknown_step_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"cannot skip \['end'\]"):
        await check_operator(lambda: good, [1, 2], skip={"end"})
    with pytest.raises(ValueError, match="unknown steps"):
        await check_operator(lambda: good, [1, 2], time_limit={"abandon": 1})


async def no_task_status(receive: Any, send: Any) -> None:
    async with receive, send:
        try:
            await _forward_all(receive, send)
        except trio.BrokenResourceError:
            return


async def never_started(
    receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    await good(receive, send)  # task_status.started() is never called


async def test_an_operator_without_task_status_is_a_contract_violation() -> None:
    # It runs in open_pipeline, but nursery.start(op, ...) cannot start it:
    # a ContractViolation saying so, not a raw ExceptionGroup(TypeError).
    async with flowkit.open_pipeline([1, 2], no_task_status) as out:
        assert [x async for x in out] == [1, 2]
    with pytest.raises(ContractViolation, match=r"nursery\.start.*task_status=trio\.TASK_STATUS"):
        await check_operator(lambda: no_task_status, [1, 2, 3], statistics=False)
    with pytest.raises(ContractViolation, match=r"task_status\.started\(\) was called 0 times"):
        await check_operator(lambda: never_started, [1, 2, 3], statistics=False)


async def test_without_expected_the_outputs_must_equal_the_inputs() -> None:
    with pytest.raises(
        ContractViolation, match=r"without expected= the outputs must equal the inputs"
    ) as info:
        await check_operator(lambda: flowkit.map(lambda x: x + 1), [1, 2, 3])
    assert "inputs [1, 2, 3], outputs [2, 3, 4]" in str(info.value)
    assert "lost" not in str(info.value)


async def fails_on_the_second_item(
    receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    async with receive, send:
        task_status.started()
        await send.send(await receive.receive())
        raise KeyError("second")


async def test_an_operator_error_is_a_contract_violation_naming_the_step() -> None:
    with pytest.raises(
        ContractViolation, match=r"step 'end': the operator raised KeyError"
    ) as info:
        await check_operator(lambda: fails_on_the_second_item, [1, 2, 3], statistics=False)
    assert isinstance(info.value.__cause__, KeyError)


async def first_only(
    receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    async with receive, send:
        task_status.started()
        try:
            await send.send(await receive.receive())
        except (trio.EndOfChannel, trio.BrokenResourceError):
            return


async def test_an_operator_that_ends_early_passes_the_end_step() -> None:
    # It closes its receive end before upstream has fed everything: the
    # checker's producer must take that as the end, not as an error.
    out = await check_operator(
        lambda: first_only, [1, 2, 3], expected=[1], statistics=False, skip={"crash"}
    )
    assert out == [1]
