"""``name=``: every operator factory takes it, documents it, and uses it."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest
import trio

import flowkit


async def identity(x: Any) -> Any:
    return x


#: Each public factory with the smallest valid arguments (name aside).
FACTORIES: dict[str, Callable[..., Any]] = {
    "adaptive_batch": lambda **kw: flowkit.adaptive_batch(4, **kw),
    "balance": lambda **kw: flowkit.balance(identity, **kw),
    "batch": lambda **kw: flowkit.batch(4, **kw),
    "broadcast": lambda **kw: flowkit.broadcast(**kw),
    "buffer": lambda **kw: flowkit.buffer(4, **kw),
    "combine_latest": lambda **kw: flowkit.combine_latest((), **kw),
    "completion_timeout": lambda **kw: flowkit.completion_timeout(1, **kw),
    "concurrent_map": lambda **kw: flowkit.concurrent_map(identity, max_concurrent=2, **kw),
    "conflate": lambda **kw: flowkit.conflate(lambda a, b: b, **kw),
    "drop_newest": lambda **kw: flowkit.drop_newest(2, **kw),
    "debounce": lambda **kw: flowkit.debounce(1, **kw),
    "delay": lambda **kw: flowkit.delay(1, **kw),
    "distinct": lambda **kw: flowkit.distinct(window=2, **kw),
    "drop_oldest": lambda **kw: flowkit.drop_oldest(2, **kw),
    "filter": lambda **kw: flowkit.filter(bool, **kw),
    "flat_map": lambda **kw: flowkit.flat_map(list, **kw),
    "fold": lambda **kw: flowkit.fold(max, 0, **kw),
    "idle_timeout": lambda **kw: flowkit.idle_timeout(1, **kw),
    "initial_timeout": lambda **kw: flowkit.initial_timeout(1, **kw),
    "join": lambda **kw: flowkit.join((), key=str, within=1, **kw),
    "keepalive": lambda **kw: flowkit.keepalive(1, "beat", **kw),
    "latest": lambda **kw: flowkit.latest(**kw),
    "map": lambda **kw: flowkit.map(str, **kw),
    "merge": lambda **kw: flowkit.merge(**kw),
    "recover": lambda **kw: flowkit.recover(lambda error: None, **kw),
    "reduce": lambda **kw: flowkit.reduce(max, **kw),
    "restart": lambda **kw: flowkit.restart(
        lambda: flowkit.map(str), min_backoff=1, max_backoff=1, max_restarts=1, **kw
    ),
    "sample": lambda **kw: flowkit.sample(1, **kw),
    "scan": lambda **kw: flowkit.scan(max, 0, **kw),
    "skip": lambda **kw: flowkit.skip(1, **kw),
    "skip_while": lambda **kw: flowkit.skip_while(bool, **kw),
    "take": lambda **kw: flowkit.take(1, **kw),
    "take_until": lambda **kw: flowkit.take_until(trio.Event(), **kw),
    "take_while": lambda **kw: flowkit.take_while(bool, **kw),
    "throttle": lambda **kw: flowkit.throttle(1, **kw),
    "throttle_latest": lambda **kw: flowkit.throttle_latest(1, **kw),
    "try_map": lambda **kw: flowkit.try_map(str, on_error="skip", **kw),
    "zip": lambda **kw: flowkit.zip((), **kw),
    "zip_latest": lambda **kw: flowkit.zip_latest((), **kw),
    "tumbling_window": lambda **kw: flowkit.tumbling_window(1, **kw),
    "sliding_window": lambda **kw: flowkit.sliding_window(1, 0.5, **kw),
    "session_window": lambda **kw: flowkit.session_window(1, **kw),
    "count_window": lambda **kw: flowkit.count_window(2, **kw),
    "event_time_window": lambda **kw: flowkit.event_time_window(1, timestamp=float, **kw),
    "group_by": lambda **kw: flowkit.group_by(str, lambda key: (), **kw),
}


def test_every_factory_with_a_name_parameter_is_listed() -> None:
    with_name = {
        name
        for name in flowkit.__all__
        if inspect.isfunction(factory := getattr(flowkit, name))
        and "name" in inspect.signature(factory).parameters
        and name != "branch"  # not an operator: tested below
    }
    assert with_name == set(FACTORIES)


@pytest.mark.parametrize("factory", sorted(FACTORIES))
def test_name_is_documented_and_its_default_is_the_documented_one(factory: str) -> None:
    doc = inspect.getdoc(getattr(flowkit, factory)) or ""
    said = re.search(r'(?:^\s*name:|``name=``)[^`]*?default[^`]*``"([^"]+)"``', doc, re.M | re.S)
    assert said is not None, f"flowkit.{factory}'s docstring does not document name="
    assert FACTORIES[factory]().statistics().name == said.group(1)


@pytest.mark.parametrize("factory", sorted(FACTORIES))
def test_name_labels_the_statistics_and_the_repr(factory: str) -> None:
    op = FACTORIES[factory](name="my stage")
    assert op.statistics().name == "my stage"
    assert "'my stage'" in repr(op)


def test_branch_names_its_statistics() -> None:
    send, _ = trio.open_memory_channel[Any](0)
    assert "name:" in (inspect.getdoc(flowkit.branch) or "")
    assert flowkit.branch(send, max_items=1).statistics().name == "branch[drop_oldest]"
    assert flowkit.branch(send, max_items=1, name="audit").statistics().name == "audit"


async def test_a_stage_error_names_its_stage(autojump_clock: trio.testing.MockClock) -> None:
    async def stalls() -> Any:
        await trio.sleep_forever()
        yield

    with pytest.raises(flowkit.IdleTimeout, match=r"\(upstream watch\)"):
        async with flowkit.open_pipeline(
            stalls(), flowkit.idle_timeout(1, name="upstream watch")
        ) as out:
            async for _ in out:
                pass
