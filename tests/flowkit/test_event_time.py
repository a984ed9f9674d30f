"""event_time_window: contract, watermarks, lateness and revisions, the cap, reference model."""

from __future__ import annotations

import math
from collections.abc import Hashable
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


def _items(out: Any) -> list[Any]:
    return [x for window in out for x in window.items]


async def _run(op: Any, items: list[Any]) -> list[tuple[Any, ...]]:
    async with flowkit.open_pipeline(items, op) as out:
        return [(w.start, w.end, w.items, w.key, w.revision, w.partial) async for w in out]


# -- the contract ------------------------------------------------------------


async def test_contract_in_order() -> None:
    out = await check_operator(
        lambda: flowkit.event_time_window(5, timestamp=float, max_items=8),
        list(range(23)),
        flatten=_items,
        max_buffered=8,
    )
    assert [w.items for w in out][:2] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


async def test_contract_keyed() -> None:
    await check_operator(
        lambda: flowkit.event_time_window(4, timestamp=float, key=lambda x: x % 3),
        list(range(23)),
        flatten=lambda out: sorted(_items(out)),
    )


async def test_contract_with_late_items_counted() -> None:
    # out of order beyond any lateness: some items are late, counted, not emitted
    inputs = [10, 0, 20, 1, 30, 2, 40]
    await check_operator(
        lambda: flowkit.event_time_window(5, timestamp=float),
        inputs,
        expected=None,
        lossless=False,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0}, "size"),
        ({"size": 1, "out_of_orderness": -1}, "out_of_orderness"),
        ({"size": 1, "allowed_lateness": math.inf}, "allowed_lateness"),
        ({"size": 1, "max_items": 0}, "max_items"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        flowkit.event_time_window(timestamp=float, **kwargs)


# -- watermarks and lateness ---------------------------------------------------


async def test_watermark_fires_lateness_re_emits_then_late_goes_aside() -> None:
    late: list[Any] = []
    op = flowkit.event_time_window(
        10, timestamp=first, out_of_orderness=2, allowed_lateness=5, on_late=late.append
    )
    items = [(1, "a"), (3, "b"), (12, "c"), (4, "d"), (25, "e"), (8, "f"), (2, "g"), (31, "h")]
    got = await _run(op, items)
    assert got == [
        # (12, "c") moved the watermark to 10: [0, 10) fires
        (0.0, 10.0, [(1, "a"), (3, "b")], None, 0, False),
        # (4, "d") is late but within 5 of the end: the window again, revision 1
        (0.0, 10.0, [(1, "a"), (3, "b"), (4, "d")], None, 1, False),
        # (25, "e"): watermark 23, [10, 20) fires; [0, 10) is purged (10 + 5 <= 23)
        (10.0, 20.0, [(12, "c")], None, 0, False),
        # the end: every open window fires
        (20.0, 30.0, [(25, "e")], None, 0, False),
        (30.0, 40.0, [(31, "h")], None, 0, False),
    ]
    assert late == [(8, "f"), (2, "g")]  # beyond the lateness: aside, never merged
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.dropped, stats.emitted) == (8, 6, 2, 5)


async def test_without_on_late_late_items_are_counted() -> None:
    op = flowkit.event_time_window(10, timestamp=float)
    got = await _run(op, [1, 15, 2, 25])
    assert [(w[0], w[2]) for w in got] == [(0.0, [1]), (10.0, [15]), (20.0, [25])]
    assert op.statistics().dropped == 1


async def test_on_late_can_feed_a_side_channel() -> None:
    side_send, side_receive = trio.open_memory_channel[float](10)
    op = flowkit.event_time_window(10, timestamp=float, on_late=side_send.send_nowait)
    await _run(op, [1, 15, 2, 3, 25])
    side_send.close()
    assert [x async for x in side_receive] == [2, 3]


async def test_out_of_orderness_keeps_a_window_open() -> None:
    op = flowkit.event_time_window(10, timestamp=float, out_of_orderness=5)
    got = await _run(op, [1, 12, 4, 14, 9, 16])
    # watermark 12 - 5 = 7 < 10: 4 and 9 are on time; 16 makes it 11
    assert got[0][2:5] == ([1, 4, 9], None, 0)
    assert op.statistics().dropped == 0


async def test_keyed_windows_share_the_watermark() -> None:
    op = flowkit.event_time_window(10, timestamp=first, key=itemgetter(1))
    got = await _run(op, [(1, "x"), (2, "y"), (3, "x"), (11, "y")])
    assert [(w[3], w[2]) for w in got] == [
        ("x", [(1, "x"), (3, "x")]),
        ("y", [(2, "y")]),
        ("y", [(11, "y")]),
    ]


async def test_at_the_cap_the_oldest_window_goes_early_and_closes() -> None:
    late: list[float] = []
    op = flowkit.event_time_window(
        10, timestamp=float, out_of_orderness=100, max_items=3, on_late=late.append
    )
    got = await _run(op, [1, 2, 11, 12, 3, 13])
    assert [(w[0], w[2], w[5]) for w in got] == [
        (0.0, [1, 2], True),  # 12 found the stage full: [0, 10) went early
        (10.0, [11, 12, 13], False),
    ]
    assert late == [3]  # its window was closed early: late, not reopened
    assert op.statistics().buffered_peak == 3


async def test_upstream_crash_fires_nothing() -> None:
    async def boom() -> Any:
        yield 1.0
        raise OSError("source broke")

    seen: list[Any] = []
    with pytest.raises(OSError, match="source broke"):
        async with flowkit.open_pipeline(
            boom(), flowkit.event_time_window(10, timestamp=float)
        ) as out:
            with pytest.raises(StreamAborted):
                async for w in out:
                    seen.append(w)
    assert seen == []


async def test_timestamp_error_propagates() -> None:
    with pytest.raises(ZeroDivisionError):
        await _run(flowkit.event_time_window(1, timestamp=lambda x: 1 / x), [1, 0])


# -- against a reference model -------------------------------------------------


def _reference(
    stamps: list[int], size: int, delay: int, lateness: int, keys: list[int], keyed: bool
) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """Flink's rules applied item by item, with no heaps and no state beyond lists."""
    items = [(ts, keys[i % len(keys)], i) for i, ts in enumerate(stamps)]
    watermark = -math.inf
    accepted: list[Any] = []
    fired: dict[tuple[int, Hashable], int] = {}  # (window, key) -> last revision
    out: list[tuple[Any, ...]] = []
    late: list[Any] = []

    def key(item: Any) -> Hashable:
        return item[1] if keyed else None

    def emit(j: int, k: Hashable) -> None:
        members = [a for a in accepted if a[0] // size == j and key(a) == k]
        fired[j, k] = fired.get((j, k), -1) + 1
        out.append((float(j * size), float((j + 1) * size), members, k, fired[j, k], False))

    def fire_up_to(mark: float) -> None:
        pending = {(a[0] // size, key(a)) for a in accepted}
        windows = sorted({j for j, _ in pending if (j + 1) * size <= mark})
        for j in windows:
            for k in dict.fromkeys(key(a) for a in accepted if a[0] // size == j):
                if (j, k) not in fired:
                    emit(j, k)

    for item in items:
        j = item[0] // size
        if (j + 1) * size + lateness <= watermark:
            late.append(item)
            continue
        accepted.append(item)
        if (j + 1) * size <= watermark:
            emit(j, key(item))
        if item[0] - delay > watermark:
            watermark = item[0] - delay
            fire_up_to(watermark)
    fire_up_to(math.inf)
    return out, late


@settings(max_examples=200, deadline=None)
@given(
    stamps=st.lists(st.integers(0, 60), max_size=40),
    size=st.sampled_from([1, 5, 10]),
    delay=st.sampled_from([0, 3, 10]),
    lateness=st.sampled_from([0, 4, 20]),
    keys=st.lists(st.integers(0, 2), min_size=1, max_size=4),
    keyed=st.booleans(),
)
def test_matches_the_reference(
    stamps: list[int], size: int, delay: int, lateness: int, keys: list[int], keyed: bool
) -> None:
    late: list[Any] = []
    op = flowkit.event_time_window(
        size,
        timestamp=first,
        out_of_orderness=delay,
        allowed_lateness=lateness,
        on_late=late.append,
        key=itemgetter(1) if keyed else None,
    )
    items = [(ts, keys[i % len(keys)], i) for i, ts in enumerate(stamps)]
    got = trio.run(_run, op, items)
    want, want_late = _reference(stamps, size, delay, lateness, keys, keyed)
    assert got == want
    assert late == want_late
    stats = op.statistics()
    assert stats.dropped == len(late)
    assert stats.items_in == len(items) == stats.items_out + stats.dropped
    assert stats.emitted == len(got)


@settings(max_examples=60, deadline=None)
@given(plan=_scenario.plans, stamps=st.lists(st.integers(0, 30), max_size=40))
def test_conservation_and_bound_under_random_pacing(
    plan: _scenario.Plan, stamps: list[int]
) -> None:
    outcome = _scenario.run(
        lambda: flowkit.event_time_window(
            5, timestamp=float, out_of_orderness=3, allowed_lateness=2, max_items=6
        ),
        stamps,
        plan,
        bound=6,
    )
    final = outcome.final
    assert final.items_in == len(stamps) == final.items_out + final.dropped
    # each accepted item is in its window's latest revision exactly once
    latest: dict[tuple[float, Any], Any] = {}
    for window in outcome.outputs:
        latest[window.start, window.key] = window
    assert sum(len(w.items) for w in latest.values()) == final.items_out


async def test_a_full_side_channel_crashes_the_stage_rather_than_dropping() -> None:
    side_send, _side_receive = trio.open_memory_channel[float](1)
    op = flowkit.event_time_window(10, timestamp=float, on_late=side_send.send_nowait)
    with pytest.raises(trio.WouldBlock):
        await _run(op, [1, 15, 2, 3])
