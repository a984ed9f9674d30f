"""recover (with the pipeline's hand-over of failures) and try_map's per-item policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator

from . import _scenario


async def failing(n: int, error: BaseException) -> AsyncIterator[int]:
    for i in range(n):
        yield i
    raise error


# -- recover -------------------------------------------------------------------


async def test_recover_contract(autojump_clock: trio.testing.MockClock) -> None:
    # Its purpose is to turn an upstream crash into a clean end, which is
    # exactly what the "crash" step forbids; every other step applies.
    await check_operator(lambda: flowkit.recover(lambda error: ["x"]), [1, 2, 3], skip={"crash"})


@pytest.mark.parametrize("drain_on_error", [False, True])
async def test_recover_replaces_a_source_failure_with_items_then_ends(
    drain_on_error: bool,
) -> None:
    op = flowkit.recover(lambda error: ["fallback", type(error).__name__])
    async with flowkit.open_pipeline(
        failing(3, ConnectionError("gone")), op, drain_on_error=drain_on_error
    ) as out:
        got = [x async for x in out]
    assert got == [0, 1, 2, "fallback", "ConnectionError"]  # and no exception
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.injected, stats.emitted) == (3, 3, 2, 5)


async def test_recover_sees_a_failure_several_tasks_upstream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def explode(x: int) -> int:
        if x == 4:
            raise KeyError(x)
        return x

    async with flowkit.open_pipeline(
        range(10),
        flowkit.map(explode),  # fused into the pump
        flowkit.throttle(100),  # a task of its own
        flowkit.buffer(2),
        flowkit.batch(2, max_delay=1),  # another one
        flowkit.recover(lambda error: [repr(error)]),
    ) as out:
        got = [x async for x in out]
    assert got == [[0, 1], [2, 3], "KeyError(4)"]


async def test_recover_lets_other_errors_through_with_their_type() -> None:
    with pytest.raises(ConnectionError, match="gone"):
        async with flowkit.open_pipeline(
            failing(2, ConnectionError("gone")), flowkit.recover(lambda e: [0], on=KeyError)
        ) as out:
            [x async for x in out]


async def test_a_failure_after_recover_still_fails_the_pipeline() -> None:
    def explode(x: Any) -> Any:
        raise ValueError("downstream of recover")

    async with flowkit.open_pipeline(
        [1], flowkit.recover(lambda e: []), flowkit.map(explode)
    ) as out:
        with pytest.raises(ValueError, match="downstream of recover"):
            [x async for x in out]


async def test_a_handler_error_fails_the_pipeline() -> None:
    def handler(error: BaseException) -> list[int]:
        raise RuntimeError("handler broke") from error

    with pytest.raises(RuntimeError, match="handler broke"):
        async with flowkit.open_pipeline(failing(1, OSError()), flowkit.recover(handler)) as out:
            [x async for x in out]


async def test_recover_with_an_async_handler_stream_and_none() -> None:
    async def replay(error: BaseException) -> AsyncIterator[str]:
        yield "cached-1"
        yield "cached-2"

    async with flowkit.open_pipeline(failing(1, OSError()), flowkit.recover(replay)) as out:
        assert [x async for x in out] == [0, "cached-1", "cached-2"]
    async with flowkit.open_pipeline(failing(1, OSError()), flowkit.recover(lambda e: None)) as out:
        assert [x async for x in out] == [0]


async def test_recover_directly_on_an_aborted_flowkit_channel() -> None:
    send: flowkit.FlowSendChannel[int]
    send, receive = flowkit.open_channel(4)
    await send.send_all([1, 2])
    send._abort(LookupError("upstream"))
    out_send, out_receive = trio.open_memory_channel[Any](10)
    await flowkit.recover(lambda error: [str(error)])(receive, out_send)
    assert [out_receive.receive_nowait() for _ in range(3)] == [1, 2, "upstream"]


# -- try_map -------------------------------------------------------------------


def odd_fails(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x * 10


async def test_try_map_contract(autojump_clock: trio.testing.MockClock) -> None:
    await check_operator(
        lambda: flowkit.try_map(odd_fails, on_error="skip"), [0, 1, 2], expected=[0, 20]
    )
    letters: list[Any] = []
    await check_operator(
        lambda: flowkit.try_map(odd_fails, on_error=lambda item, error: letters.append(item)),
        [0, 1, 2],
        expected=[0, 20],
    )
    assert set(letters) == {1}

    async def slow(x: int) -> int:
        await trio.sleep(0.1)
        return odd_fails(x)

    await check_operator(
        lambda: flowkit.try_map(slow, on_error="skip"), [0, 1, 2], expected=[0, 20]
    )
    await check_operator(
        lambda: flowkit.try_map(odd_fails, on_error="stop"),
        [0, 2, 1, 4],
        expected=[0, 20],
        skip={"statistics", "crash"},  # it ends early, by design
    )


async def test_try_map_policies() -> None:
    skip = flowkit.try_map(odd_fails, on_error="skip")
    async with flowkit.open_pipeline(range(6), skip) as out:
        assert [x async for x in out] == [0, 20, 40]
    assert (skip.statistics().dropped, skip.failed) == (3, 3)

    stop = flowkit.try_map(odd_fails, on_error="stop")
    async with flowkit.open_pipeline(range(6), stop) as out:
        assert [x async for x in out] == [0]
    assert stop.failed == 1

    with pytest.raises(ValueError, match="odd 1"):
        async with flowkit.open_pipeline(
            range(6), flowkit.try_map(odd_fails, on_error="raise")
        ) as out:
            [x async for x in out]


async def test_try_map_dead_letters_async_and_only_the_chosen_errors() -> None:
    letters: list[tuple[int, str]] = []

    async def dead_letter(item: int, error: Exception) -> None:
        await trio.lowlevel.checkpoint()
        letters.append((item, str(error)))

    op = flowkit.try_map(odd_fails, on_error=dead_letter, errors=ValueError)
    async with flowkit.open_pipeline(range(4), op) as out:
        assert [x async for x in out] == [0, 20]
    assert letters == [(1, "odd 1"), (3, "odd 3")]

    def type_error(x: int) -> int:
        raise TypeError("not chosen")

    with pytest.raises(TypeError, match="not chosen"):
        async with flowkit.open_pipeline(
            [1], flowkit.try_map(type_error, on_error="skip", errors=ValueError)
        ) as out:
            [x async for x in out]


def test_try_map_refuses_an_unknown_policy() -> None:
    with pytest.raises(ValueError, match="on_error must be"):
        flowkit.try_map(str, on_error="ignore")  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    plan=_scenario.plans,
    items=st.lists(st.integers(0, 9), max_size=30),
    policy=st.sampled_from(["skip", "stop", "letter"]),
)
def test_try_map_matches_the_model(plan: _scenario.Plan, items: list[int], policy: str) -> None:
    letters: list[int] = []
    on_error: Any = (lambda item, error: letters.append(item)) if policy == "letter" else policy
    outcome = _scenario.run(
        lambda: flowkit.try_map(odd_fails, on_error=on_error), items, plan, bound=None
    )
    model: list[int] = []
    for x in items:
        if x % 2 == 0:
            model.append(x * 10)
        elif policy == "stop":
            break
    assert outcome.outputs == model
    if policy == "letter":
        assert letters == [x for x in items if x % 2]
    if policy != "stop":
        assert outcome.final.dropped == sum(x % 2 for x in items)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(0, 600),
    fail_at=st.one_of(st.none(), st.integers(0, 600)),
    replacement=st.lists(st.integers(-9, -1), max_size=5),
    task_between=st.booleans(),
    drain_on_error=st.booleans(),
)
def test_recover_matches_the_model(
    n: int, fail_at: int | None, replacement: list[int], task_between: bool, drain_on_error: bool
) -> None:
    def check(x: int) -> int:
        if x == fail_at:
            raise ValueError(x)
        return x

    # The failing map is fused into the source's pump; a throttle between
    # it and recover puts a task of its own in the failure's way.
    stages: list[Any] = [flowkit.map(check)]
    if task_between:
        stages.append(flowkit.throttle(1000))

    async def main() -> list[int]:
        async with flowkit.open_pipeline(
            range(n),
            *stages,
            flowkit.recover(lambda error: replacement),
            drain_on_error=drain_on_error,
        ) as out:
            return [x async for x in out]

    got = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    if fail_at is None or fail_at >= n:
        assert got == list(range(n))
    else:
        assert got == [*range(fail_at), *replacement]
