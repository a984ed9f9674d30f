"""restart_source / restart: backoff with full jitter, the budget, and nothing lost silently."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit.testing import check_operator

from . import _scenario


class FlakySource:
    """A source factory whose first ``failures`` runs fail after ``per_run`` items."""

    def __init__(self, failures: int, per_run: int = 2) -> None:
        self.failures = failures
        self.per_run = per_run
        self.runs = 0
        self.closed = 0

    def __call__(self) -> AsyncIterator[tuple[int, int]]:
        self.runs += 1
        return self._run(self.runs)

    async def _run(self, run: int) -> AsyncIterator[tuple[int, int]]:
        try:
            for i in range(self.per_run):
                yield (run, i)
            if run <= self.failures:
                raise ConnectionError(f"run {run} dropped")
        finally:
            self.closed += 1


def backoffs(seed: int, count: int, low: float, high: float) -> list[float]:
    """The sleeps the operators take with ``random.Random(seed)``: the reference model."""
    rng = random.Random(seed)
    return [rng.uniform(0, min(high, low * 2**k)) for k in range(count)]


async def test_restart_source_waits_a_jittered_exponential_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = FlakySource(failures=3)
    seen: list[tuple[str, int]] = []
    src = flowkit.restart_source(
        flaky,
        min_backoff=1,
        max_backoff=3,
        max_restarts=5,
        on_restart=lambda error, lost: seen.append((str(error), lost)),
        rng=random.Random(7),
    )
    t0 = trio.current_time()
    async with flowkit.open_pipeline(src) as out:
        got = [x async for x in out]
    assert got == [(run, i) for run in (1, 2, 3, 4) for i in range(2)]
    assert src.restarts == 3
    assert flaky.closed == 4
    assert seen == [(f"run {n} dropped", 0) for n in (1, 2, 3)]
    # caps 1, 2, then 3 (max_backoff), each slept uniformly below its cap
    assert trio.current_time() - t0 == pytest.approx(sum(backoffs(7, 3, 1, 3)))


async def test_restart_source_gives_up_after_the_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    src = flowkit.restart_source(
        FlakySource(failures=10), min_backoff=1, max_backoff=1, max_restarts=2, within=60
    )
    with pytest.raises(ConnectionError, match="run 3 dropped") as info:
        async with flowkit.open_pipeline(src) as out:
            [x async for x in out]
    assert "gave up after 2 restart(s) within 60 s" in str(info.value.__notes__)


async def test_restarts_outside_the_window_do_not_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = 0

    async def slow_flaky() -> AsyncIterator[int]:
        nonlocal runs
        runs += 1
        if runs > 5:
            return
        yield runs
        await trio.sleep(100)  # fails only every 100 s: never two within 50 s
        raise OSError("blip")

    src = flowkit.restart_source(
        slow_flaky, min_backoff=1, max_backoff=1, max_restarts=1, within=50
    )
    async with flowkit.open_pipeline(src) as out:
        assert [x async for x in out] == [1, 2, 3, 4, 5]
    assert src.restarts == 5


def test_backoff_settings_are_validated() -> None:
    for bad, message in [
        ({"min_backoff": 0}, "min_backoff must be"),
        ({"max_backoff": math.nan}, "max_backoff must be"),
        ({"min_backoff": 2, "max_backoff": 1}, "max_backoff .* is below min_backoff"),
        ({"max_restarts": 0}, "max_restarts must be"),
        ({"within": -1}, "within must be"),
    ]:
        settings_ = {"min_backoff": 1, "max_backoff": 2, "max_restarts": 1, **bad}
        with pytest.raises(ValueError, match=message):
            flowkit.restart_source(list, **settings_)
        with pytest.raises(ValueError, match=message):
            flowkit.restart(lambda: flowkit.map(str), **settings_)


# -- restart (a stage) ---------------------------------------------------------


def failing_first(stages: list[Any], make: Callable[[int], Any]) -> Callable[[], Any]:
    def factory() -> Any:
        stage = make(len(stages))
        stages.append(stage)
        return stage

    return factory


def explode_at(value: int) -> Callable[[int], int]:
    def fn(x: int) -> int:
        if x == value:
            raise ValueError(f"bad {x}")
        return x

    return fn


async def test_restart_contract(autojump_clock: trio.testing.MockClock) -> None:
    settings_: dict[str, Any] = {"min_backoff": 1, "max_backoff": 1, "max_restarts": 1}
    await check_operator(
        lambda: flowkit.restart(lambda: flowkit.map(str), **settings_),
        [1, 2, 3],
        expected=["1", "2", "3"],
    )
    await check_operator(
        lambda: flowkit.restart(lambda: flowkit.batch(2, max_delay=1), **settings_),
        [1, 2, 3],
        expected=[[1, 2], [3]],
    )


async def test_restart_counts_what_the_crashed_stage_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lost: list[tuple[str, int]] = []
    stages: list[Any] = []

    def make(generation: int) -> Any:
        if generation == 0:
            # A batch holding two items, then a map that crashes on 4.
            return flowkit.map(explode_at(4))
        return flowkit.map(lambda x: x)

    async def paced() -> AsyncIterator[int]:
        for x in range(8):
            yield x
            await trio.sleep(1)  # one item per chunk: the crash loses only its item

    op = flowkit.restart(
        failing_first(stages, make),
        min_backoff=0.5,
        max_backoff=0.5,
        max_restarts=3,
        on_restart=lambda error, n: lost.append((str(error), n)),
        rng=random.Random(0),
    )
    async with flowkit.open_pipeline(paced(), op) as out:
        got = [x async for x in out]
    assert got == [0, 1, 2, 3, 5, 6, 7]
    assert lost == [("bad 4", 1)]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.buffered) == (8, 7, 1, 0)
    assert op.restarts == 1
    assert len(stages) == 2


async def test_restart_counts_the_calls_in_flight_lost_at_a_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lost: list[int] = []

    async def call(x: int) -> int:
        await trio.sleep(0.5 if x == 4 else 1)
        if x == 4:
            raise ValueError("bad 4")  # while 5, 6 and 7 are in flight
        return x

    generation = 0

    def factory() -> Any:
        nonlocal generation
        generation += 1
        if generation == 1:
            return flowkit.concurrent_map(call, max_concurrent=4)
        return flowkit.map(lambda x: x)

    op = flowkit.restart(
        factory,
        min_backoff=1,
        max_backoff=1,
        max_restarts=1,
        on_restart=lambda e, n: lost.append(n),
    )
    async with flowkit.open_pipeline([*range(8), "after"], flowkit.buffer(16), op) as out:
        got = [x async for x in out]
    assert got == [0, 1, 2, 3, "after"]
    assert lost == [4]  # the failing call and the three in flight with it
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.buffered) == (9, 5, 4, 0)


async def test_restart_does_not_restart_on_an_upstream_failure() -> None:
    made = 0

    def factory() -> Any:
        nonlocal made
        made += 1
        return flowkit.map(lambda x: x)

    async def crashing() -> AsyncIterator[int]:
        yield 1
        raise KeyError("upstream")

    with pytest.raises(KeyError):
        async with flowkit.open_pipeline(
            crashing(),
            flowkit.restart(factory, min_backoff=1, max_backoff=1, max_restarts=5),
        ) as out:
            [x async for x in out]
    assert made == 1


async def test_restart_gives_up_with_the_original_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    op = flowkit.restart(
        lambda: flowkit.map(explode_at(1)), min_backoff=1, max_backoff=1, max_restarts=2
    )

    async def ones() -> AsyncIterator[int]:
        while True:
            yield 1
            await trio.sleep(0.1)

    with pytest.raises(ValueError, match="bad 1"):
        async with flowkit.open_pipeline(ones(), op) as out:
            [x async for x in out]
    assert op.restarts == 2


async def test_an_inner_stage_that_ends_ends_the_stream() -> None:
    import itertools

    op = flowkit.restart(lambda: flowkit.take(3), min_backoff=1, max_backoff=1, max_restarts=1)
    async with flowkit.open_pipeline(itertools.count(), op) as out:
        assert [x async for x in out] == [0, 1, 2]
    stats = op.statistics()
    assert stats.items_in == stats.items_out + stats.dropped
    assert stats.buffered == 0


async def test_restart_refuses_a_stage_without_statistics() -> None:
    async def bare(receive: Any, send: Any) -> None:
        async with receive, send:
            pass

    with pytest.raises(TypeError, match="statistics"):
        async with flowkit.open_pipeline(
            [1], flowkit.restart(lambda: bare, min_backoff=1, max_backoff=1, max_restarts=1)
        ) as out:
            [x async for x in out]


@settings(max_examples=60, deadline=None)
@given(
    plan=_scenario.plans,
    n=st.integers(0, 30),
    bad=st.sets(st.integers(0, 29), max_size=3),
)
def test_restart_loses_only_what_it_reports(plan: _scenario.Plan, n: int, bad: set[int]) -> None:
    # Each failing value crashes one generation; a model: outputs are the
    # inputs minus exactly what on_restart reported lost, in order.
    lost: list[int] = []
    remaining = set(bad)

    def fn(x: int) -> int:
        if x in remaining:
            remaining.discard(x)
            raise ValueError(x)
        return x

    outcome = _scenario.run(
        lambda: flowkit.restart(
            lambda: flowkit.map(fn),
            min_backoff=0.01,
            max_backoff=0.05,
            max_restarts=5,
            on_restart=lambda error, count: lost.append(count),
        ),
        list(range(n)),
        plan,
        bound=None,
    )
    got = outcome.outputs
    assert got == sorted(set(got))
    assert set(got) <= set(range(n))
    assert n - len(got) == sum(lost) == outcome.final.dropped
    assert len(lost) == len(bad & set(range(n))) - len(remaining & set(range(n)))
