"""group_by: contract, per-key sub-pipelines, idle expiry, the key cap's three policies."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from operator import itemgetter
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit import StreamAborted
from flowkit.testing import check_operator

from . import _scenario

first = itemgetter(0)


def _tagged(k: Hashable) -> Sequence[Any]:
    return [flowkit.map(lambda x: (k, x))]


async def _timeline(
    op: Any, sends: list[tuple[float, Any]], *, end_at: float | None = None
) -> tuple[list[tuple[float, Any]], list[float]]:
    """Send ``(time, item)``; record ``(arrival, output)`` and when each send completed."""
    up_send, up_receive = trio.open_memory_channel[Any](0)
    down_send, down_receive = trio.open_memory_channel[Any](0)
    seen: list[tuple[float, Any]] = []
    sent: list[float] = []

    async def produce() -> None:
        async with up_send:
            for at, item in sends:
                await trio.sleep_until(at)
                await up_send.send(item)
                sent.append(trio.current_time())
            if end_at is not None:
                await trio.sleep_until(end_at)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        async with down_receive:
            async for value in down_receive:
                seen.append((trio.current_time(), value))
    return seen, sent


# -- the contract ------------------------------------------------------------


async def test_contract_pass_through(autojump_clock: Any) -> None:
    await check_operator(
        lambda: flowkit.group_by(lambda x: x % 3, lambda k: ()),
        list(range(23)),
        flatten=sorted,
        max_buffered=16,
    )


async def test_contract_with_sub_pipelines(autojump_clock: Any) -> None:
    out = await check_operator(
        lambda: flowkit.group_by(lambda x: x % 4, _tagged, max_keys=2, idle_timeout=0.01),
        list(range(23)),
        flatten=lambda out: sorted(x for _, x in out),
    )
    assert all(x % 4 == k for k, x in out)


async def test_contract_with_keyed_windows_inside(autojump_clock: Any) -> None:
    await check_operator(
        lambda: flowkit.group_by(
            lambda x: x % 2, lambda k: [flowkit.count_window(3)], per_key_items=4
        ),
        list(range(23)),
        flatten=lambda out: sorted(x for w in out for x in w.items),
        max_buffered=4,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_keys": 0}, "max_keys"),
        ({"idle_timeout": 0}, "idle_timeout"),
        ({"at_cap": "drop"}, "at_cap"),
        ({"per_key_items": 0}, "per_key_items"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        flowkit.group_by(first, _tagged, **kwargs)


# -- keys -----------------------------------------------------------------------


async def test_each_key_gets_its_own_state() -> None:
    async def running_total(
        receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with receive, send:
            task_status.started()
            total = 0
            async for key, value in receive:
                total += value
                await send.send((key, total))

    op = flowkit.group_by(first, lambda k: [running_total])
    items = [("a", 1), ("b", 10), ("a", 2), ("b", 20), ("a", 3)]
    async with flowkit.open_pipeline(items, op) as out:
        got = [x async for x in out]
    assert [x for x in got if x[0] == "a"] == [("a", 1), ("a", 3), ("a", 6)]
    assert [x for x in got if x[0] == "b"] == [("b", 10), ("b", 30)]
    assert op.group_statistics().opened == 2


async def test_an_idle_key_expires_and_its_sub_pipeline_flushes(autojump_clock: Any) -> None:
    op = flowkit.group_by(first, lambda k: [flowkit.count_window(10)], idle_timeout=1.0)
    sends = [(0.0, ("a", 1)), (0.5, ("a", 2)), (0.75, ("b", 1)), (3.0, ("a", 3))]
    seen, _ = await _timeline(op, sends, end_at=3.5)
    # "a" idle from 0.5: expired at 1.5, its partial window flushed then
    assert [(at, w.items) for at, w in seen] == [
        (1.5, [("a", 1), ("a", 2)]),
        (1.75, [("b", 1)]),
        (3.5, [("a", 3)]),  # a fresh sub-pipeline for "a", flushed at the end
    ]
    stats = op.group_statistics()
    assert (stats.opened, stats.expired, stats.live, stats.live_peak) == (3, 2, 0, 2)


async def test_a_key_back_after_expiry_waits_for_its_old_sub_pipeline(
    autojump_clock: Any,
) -> None:
    async def slow(receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with receive, send:
            task_status.started()
            async for item in receive:
                await trio.sleep(1.0)
                await send.send(item)

    op = flowkit.group_by(first, lambda k: [slow], idle_timeout=0.1)
    sends = [(0.0, ("a", 1)), (0.0, ("a", 2)), (0.5, ("a", 3))]
    seen, _ = await _timeline(op, sends)
    # "a" expired at 0.1 with 2 still queued; the fresh sub-pipeline for 3
    # starts only when the old one has ended (2.0), so it cannot overtake
    assert seen == [(1.0, ("a", 1)), (2.0, ("a", 2)), (3.0, ("a", 3))]


async def test_at_the_cap_a_new_key_waits_for_one_to_expire(autojump_clock: Any) -> None:
    op = flowkit.group_by(first, _tagged, max_keys=2, idle_timeout=1.0)
    sends = [(0.0, ("a", 1)), (0.25, ("b", 1)), (0.5, ("c", 1)), (0.5, ("a", 2))]
    seen, sent = await _timeline(op, sends, end_at=2.0)
    # "c" (taken at 0.5) waited until "a", idle since 0, expired at 1.0;
    # upstream waited meanwhile
    assert sent == [0.0, 0.25, 0.5, 1.0]
    assert [(at, item) for at, (_, item) in seen] == [
        (0.0, ("a", 1)),
        (0.25, ("b", 1)),
        (1.0, ("c", 1)),
        # "a" had expired, so it is a new key again: it waits for "b" (1.25)
        (1.25, ("a", 2)),
    ]
    stats = op.group_statistics()
    assert stats.live_peak == 2
    assert stats.waited_seconds == 0.75


async def test_at_the_cap_evict_closes_the_idlest_key_now(autojump_clock: Any) -> None:
    op = flowkit.group_by(first, lambda k: [flowkit.count_window(10)], max_keys=2, at_cap="evict")
    sends = [(0.0, ("a", 1)), (0.25, ("b", 1)), (0.5, ("a", 2)), (0.75, ("c", 1))]
    seen, sent = await _timeline(op, sends, end_at=1.0)
    assert sent == [0.0, 0.25, 0.5, 0.75]  # nobody waited
    # "b" was the idlest: its window was flushed when "c" arrived
    assert seen[0][0] == 0.75
    assert seen[0][1].items == [("b", 1)]
    assert op.group_statistics().evicted == 1


async def test_at_the_cap_fail_raises_a_clear_error() -> None:
    op = flowkit.group_by(first, _tagged, max_keys=1, at_cap="fail", name="per user")
    with pytest.raises(RuntimeError, match=r"per user: 1 live keys .* new key 'b'"):
        async with flowkit.open_pipeline([("a", 1), ("b", 1)], op) as out:
            [x async for x in out]


async def test_a_slow_key_holds_up_the_others_once_its_buffer_is_full(
    autojump_clock: Any,
) -> None:
    async def slow(receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with receive, send:
            task_status.started()
            async for item in receive:
                await trio.sleep(1.0)
                await send.send(item)

    op = flowkit.group_by(first, lambda k: [slow] if k == "slow" else (), per_key_items=2)
    sends = [(0.0, ("slow", i)) for i in range(5)] + [(0.0, ("fast", 0))]
    seen, _ = await _timeline(op, sends)
    fast_at = next(at for at, value in seen if value[0] == "fast")
    # "slow" takes one item at once and queues 2; the 4th waits for room
    # (at 1.0), the 5th too (at 2.0): only then does "fast" get its item
    assert fast_at == 2.0


async def test_a_lossy_first_stage_keeps_a_slow_key_from_holding_up_others(
    autojump_clock: Any,
) -> None:
    async def slow(receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with receive, send:
            task_status.started()
            async for item in receive:
                await trio.sleep(1.0)
                await send.send(item)

    def make(k: Hashable) -> Sequence[Any]:
        return [flowkit.drop_oldest(1), slow] if k == "slow" else ()

    op = flowkit.group_by(first, make, per_key_items=2)
    sends = [(0.0, ("slow", i)) for i in range(5)] + [(0.0, ("fast", 0))]
    seen, _ = await _timeline(op, sends)
    assert next(at for at, value in seen if value[0] == "fast") == 0.0


async def test_a_sub_pipeline_that_ends_early_counts_what_it_refused() -> None:
    async def first_only(
        receive: Any, send: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with receive, send:
            task_status.started()
            await send.send(await receive.receive())

    op = flowkit.group_by(first, lambda k: [first_only], per_key_items=1)
    items = [("a", i) for i in range(50)]
    async with flowkit.open_pipeline(items, op) as out:
        got = [x async for x in out]
    # each sub-pipeline took one item; a later item started a fresh one
    assert got == sorted(got)
    assert op.group_statistics().opened == len(got)
    stats = op.statistics()
    assert stats.dropped == 50 - len(got) > 0  # what they refused, counted
    assert (stats.items_in, stats.items_out, stats.buffered) == (50, len(got), 0)


# -- errors ---------------------------------------------------------------------


async def test_a_sub_pipeline_error_propagates_with_its_type() -> None:
    def boom(x: Any) -> Any:
        raise KeyError("bad reading")

    with pytest.raises(KeyError, match="bad reading"):
        async with flowkit.open_pipeline(
            [("a", 1)], flowkit.group_by(first, lambda k: [flowkit.map(boom)])
        ) as out:
            [x async for x in out]


async def test_upstream_crash_propagates() -> None:
    async def source() -> Any:
        yield ("a", 1)
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        async with flowkit.open_pipeline(source(), flowkit.group_by(first, _tagged)) as out:
            with pytest.raises(StreamAborted):
                async for _ in out:
                    pass


# -- against a reference model -------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    plan=_scenario.plans,
    keys=st.lists(st.integers(0, 5), max_size=40),
    max_keys=st.integers(1, 4),
    at_cap=st.sampled_from(["wait", "evict"]),
)
def test_per_key_order_and_nothing_lost(
    plan: _scenario.Plan, keys: list[int], max_keys: int, at_cap: Any
) -> None:
    items = [(k, i) for i, k in enumerate(keys)]
    holder: list[Any] = []

    def make() -> Any:
        op = flowkit.group_by(
            first, _tagged, max_keys=max_keys, idle_timeout=0.05, at_cap=at_cap, per_key_items=3
        )
        holder.append(op)
        return op

    outcome = _scenario.run(make, items, plan, bound=3)
    got = [value for _, value in outcome.outputs]
    # the plain model: every item once, each key's items in their order
    assert sorted(got, key=lambda item: item[1]) == items
    for k in set(keys):
        assert [x for x in got if x[0] == k] == [x for x in items if x[0] == k]
    assert holder[0].group_statistics().live_peak <= max_keys


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(-5, 5)), max_size=60))
def test_keyed_scan_and_fold_keep_state_per_key(items: list[tuple[str, int]]) -> None:
    """Keyed scan/fold (issue 18 item 3): group_by with a scan or fold per key."""

    def per_key(fold: bool) -> Any:
        def make(key: Hashable) -> Sequence[Any]:
            add = flowkit.fold if fold else flowkit.scan
            return (
                flowkit.map(lambda kv: kv[1]),
                add(lambda acc, v: acc + v, 0),
                flowkit.map(lambda total, key=key: (key, total)),
            )

        return flowkit.group_by(lambda kv: kv[0], make)

    async def run(fold: bool) -> list[tuple[str, int]]:
        async with flowkit.open_pipeline(items, per_key(fold)) as out:
            return [x async for x in out]

    running: dict[str, list[int]] = {}
    totals: dict[str, int] = {}
    for key, value in items:
        totals[key] = totals.get(key, 0) + value
        running.setdefault(key, []).append(totals[key])
    scanned = trio.run(run, False)
    for key in running:  # per key, in order: the running totals of that key alone
        assert [t for k, t in scanned if k == key] == running[key]
    assert sorted(trio.run(run, True)) == sorted(totals.items())
