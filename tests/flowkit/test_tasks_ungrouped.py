"""Errors keep their original type through every operator that runs tasks.

The operator contract promises the original exception, never an exception
group, so ``except ValueError`` works. Each stage below runs a nursery of its
own, and most are made to fail in several tasks at once (the case that used
to leak a nested ``ExceptionGroup``). Each is checked three ways: inside
``open_pipeline`` (both failure modes), inside ``start_pipeline`` (the
caller's nursery groups, but each error in it is the bare original), and
awaited directly over plain trio channels.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

import flowkit


async def raise_now(x: Any) -> Any:
    raise ValueError(f"boom {x}")


def raising(_item: Any, *_rest: Any) -> Any:
    raise ValueError("boom from a user callback")


async def raising_source(tag: str) -> AsyncIterator[Any]:
    raise ValueError(f"boom {tag}")
    yield  # an async generator that fails on its first step


def raising_workers(n: int) -> list[Callable[..., Any]]:
    """``n`` balance workers that each take an item, then all fail together."""
    holding = 0
    together = trio.Event()

    async def worker(
        receive: trio.abc.ReceiveChannel[Any], send: trio.abc.SendChannel[Any]
    ) -> None:
        nonlocal holding
        try:
            async for item in receive:
                holding += 1
                if holding < n:
                    await together.wait()  # woken with a value: raises even if cancelled
                together.set()
                raise ValueError(f"boom {item}")
        finally:  # closed without a checkpoint, which would turn the error into Cancelled
            receive.close()  # type: ignore[attr-defined]
            send.close()  # type: ignore[attr-defined]

    return [worker] * n


class ExplodingChannel(trio.abc.SendChannel[Any]):
    """A branch whose consumer fails on every item."""

    async def send(self, value: Any) -> None:
        raise ValueError(f"boom {value}")

    async def aclose(self) -> None:
        pass

    def close(self) -> None:
        pass


#: name -> (fresh stage, items fed to it). Several tasks fail at once in
#: concurrent_map (four calls), merge (two sources), balance (two workers) and
#: broadcast (two branches); the others run one user callback in a two-task
#: hand-off or a buffer's pump.
SCENARIOS: dict[str, Callable[[], Any]] = {
    "concurrent_map": lambda: flowkit.concurrent_map(raise_now, max_concurrent=4),
    "merge": lambda: flowkit.merge(raising_source("a"), raising_source("b")),
    "balance": lambda: flowkit.balance(*raising_workers(2)),
    "broadcast": lambda: flowkit.broadcast(
        flowkit.branch(ExplodingChannel(), max_items=4),
        flowkit.branch(ExplodingChannel(), max_items=4),
    ),
    "drop_oldest": lambda: flowkit.drop_oldest(1, on_drop=raising),
    "drop_newest": lambda: flowkit.drop_newest(1, on_drop=raising),
    "conflate": lambda: flowkit.conflate(raising),
    "adaptive_batch": lambda: flowkit.adaptive_batch(4, weight=raising, max_weight=10),
}

ITEMS = list(range(8))


async def consume_slowly(out: trio.abc.ReceiveChannel[Any]) -> None:
    async for _ in out:
        await trio.sleep(1)  # a busy consumer, so lossy stages overflow


@pytest.mark.parametrize("drain_on_error", [False, True])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_open_pipeline_raises_the_original_type(
    name: str, drain_on_error: bool, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(ValueError, match="boom") as info:
        async with flowkit.open_pipeline(
            ITEMS, SCENARIOS[name](), drain_on_error=drain_on_error
        ) as out:
            await consume_slowly(out)
    assert not isinstance(info.value, BaseExceptionGroup)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_start_pipeline_puts_the_original_type_in_the_callers_nursery(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(ExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            out = flowkit.start_pipeline(nursery, ITEMS, SCENARIOS[name]())
            await consume_slowly(out)
    # The caller's own nursery groups, as trio nurseries do; inside it each
    # task's error is the bare original, not a group of the stage's tasks.
    errors = info.value.exceptions
    assert not any(isinstance(error, BaseExceptionGroup) for error in errors), errors
    assert any(isinstance(error, ValueError) for error in errors), errors


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_awaited_directly_raises_the_original_type(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    up_send, up_receive = trio.open_memory_channel[Any](len(ITEMS))
    down_send, down_receive = trio.open_memory_channel[Any](0)  # nobody reads: busy
    for item in ITEMS:
        up_send.send_nowait(item)
    up_send.close()
    with pytest.raises(ValueError, match="boom") as info, trio.fail_after(60):
        await SCENARIOS[name]()(up_receive, down_send)
    assert not isinstance(info.value, BaseExceptionGroup)
    down_receive.close()


async def test_simultaneous_failures_raise_the_first_and_name_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(ValueError, match="boom") as info:
        async with flowkit.open_pipeline(
            ITEMS, flowkit.concurrent_map(raise_now, max_concurrent=4)
        ) as out:
            await consume_slowly(out)
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1
    assert "3 other error(s) raised at the same time" in notes[0]
    assert notes[0].count("ValueError(") == 3


async def test_two_stages_failing_at_once_give_one_original_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The source's pump and merge's extra input fail in the same step: two
    # real errors in the pipeline's own nursery, still one ValueError out.
    with pytest.raises(ValueError, match=r"boom (source|merged)"):
        async with flowkit.open_pipeline(
            raising_source("source"), flowkit.merge(raising_source("merged"))
        ) as out:
            await consume_slowly(out)


async def test_a_hand_written_stage_with_a_nursery_keeps_the_promise(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fan_out_and_fail(
        receive: trio.abc.ReceiveChannel[Any],
        send: trio.abc.SendChannel[Any],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with receive, send, trio.open_nursery() as nursery:
            task_status.started()
            async for item in receive:
                nursery.start_soon(raise_now, item)

    with pytest.raises(ValueError, match="boom"):
        async with flowkit.open_pipeline(ITEMS, fan_out_and_fail) as out:
            await consume_slowly(out)


def test_a_sync_function_is_refused_when_concurrent_map_is_built() -> None:
    with pytest.raises(TypeError, match=r"needs an async function .* use flowkit\.map"):
        flowkit.concurrent_map(lambda x: x * 2, max_concurrent=2)

    def sync_double(x: int) -> int:
        return 2 * x

    with pytest.raises(TypeError, match="sync_double"):
        flowkit.concurrent_map(sync_double, max_concurrent=2)  # type: ignore[arg-type]


def test_async_callables_of_every_kind_are_accepted() -> None:
    import functools

    class Fetcher:
        async def __call__(self, x: int) -> int:
            return x

    async def scaled(x: int, factor: int) -> int:
        return x * factor

    flowkit.concurrent_map(raise_now, max_concurrent=2)
    flowkit.concurrent_map(Fetcher(), max_concurrent=2)
    flowkit.concurrent_map(functools.partial(scaled, factor=3), max_concurrent=2)


async def test_a_standalone_buffer_raises_the_original_type(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Inside a pipeline a buffer is a hop, not a task; awaited on its own it
    # pumps through a nursery, and a failing downstream must not come out
    # of it as a group.
    up_send, up_receive = trio.open_memory_channel[Any](len(ITEMS))
    for item in ITEMS:
        up_send.send_nowait(item)
    up_send.close()
    with pytest.raises(ValueError, match="boom") as info:
        await flowkit.buffer(4)(up_receive, ExplodingChannel())
    assert not isinstance(info.value, BaseExceptionGroup)
