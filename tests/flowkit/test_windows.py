"""Windows: contract, exact closing times on the mock clock, bounds, keys, reference model."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from operator import itemgetter
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit import StreamAborted, Window
from flowkit.testing import check_operator

from . import _scenario

INPUTS = list(range(23))


def _items(out: Any) -> list[Any]:
    return [x for window in out for x in window.items]


async def _timeline(
    op: Any, sends: list[tuple[float, Any]], *, end_at: float | None = None, pause: float = 0.0
) -> list[tuple[float, Window[Any]]]:
    """Send ``(time, item)`` pairs, end at ``end_at``; record ``(arrival, window)``."""
    up_send, up_receive = trio.open_memory_channel[Any](0)
    down_send, down_receive = trio.open_memory_channel[Any](0)
    seen: list[tuple[float, Window[Any]]] = []

    async def produce() -> None:
        async with up_send:
            for at, item in sends:
                await trio.sleep_until(at)
                await up_send.send(item)
            if end_at is not None:
                await trio.sleep_until(end_at)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        async with down_receive:
            async for window in down_receive:
                seen.append((trio.current_time(), window))
                if pause:
                    await trio.sleep(pause)
    return seen


def _shape(seen: list[tuple[float, Window[Any]]]) -> list[tuple[Any, ...]]:
    return [(at, w.start, w.end, w.items, w.key, w.partial) for at, w in seen]


# -- the contract ------------------------------------------------------------

WINDOWS: dict[str, tuple[Callable[[], Any], int]] = {
    "tumbling": (lambda: flowkit.tumbling_window(0.01, max_items=8), 8),
    "tumbling_keyed": (lambda: flowkit.tumbling_window(0.01, key=lambda x: x % 3), 10_000),
    "tumbling_empty": (lambda: flowkit.tumbling_window(0.005, emit_empty=True, max_items=5), 5),
    "sliding": (lambda: flowkit.sliding_window(0.02, 0.01, max_items=6), 6),
    "sliding_keyed": (lambda: flowkit.sliding_window(0.02, 0.005, key=lambda x: x % 2), 10_000),
    "session": (lambda: flowkit.session_window(0.004, max_items=7), 7),
    "session_keyed": (lambda: flowkit.session_window(0.004, key=lambda x: x % 4), 10_000),
    "count": (lambda: flowkit.count_window(4), 4),
    "count_keyed": (lambda: flowkit.count_window(3, key=lambda x: x % 3, max_items=5), 5),
}


def _sorted_items(out: Any) -> list[Any]:
    return sorted(_items(out))


def _distinct_items(out: Any) -> list[Any]:
    return sorted(set(_items(out)))


@pytest.mark.parametrize("kind", sorted(WINDOWS))
async def test_contract(kind: str, autojump_clock: Any) -> None:
    make, bound = WINDOWS[kind]
    # keyed windows keep the order within a key, not across keys; sliding
    # windows carry an item in each window it falls in
    flatten = _distinct_items if "sliding" in kind else _sorted_items if "keyed" in kind else _items
    await check_operator(make, INPUTS, flatten=flatten, max_buffered=bound)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: flowkit.tumbling_window(0), "size"),
        (lambda: flowkit.tumbling_window(math.inf), "size"),
        (lambda: flowkit.tumbling_window(True), "size"),
        (lambda: flowkit.tumbling_window(1, max_items=0), "max_items"),
        (lambda: flowkit.tumbling_window(1, key=str, emit_empty=True), "unkeyed"),
        (lambda: flowkit.sliding_window(1, 2), "must not exceed size"),
        (lambda: flowkit.sliding_window(1, 0), "every"),
        (lambda: flowkit.session_window(-1), "gap"),
        (lambda: flowkit.count_window(0), "size"),
        (lambda: flowkit.count_window(5, key=str, max_items=4), "at least size"),
    ],
)
def test_settings_are_validated(make: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# -- over time ------------------------------------------------------------------


async def test_tumbling_windows_close_on_the_grid(autojump_clock: Any) -> None:
    sends = [(0.1, "a"), (0.5, "b"), (1.0, "c"), (1.25, "d"), (3.5, "e")]
    seen = await _timeline(flowkit.tumbling_window(1.0), sends, end_at=3.75)
    assert _shape(seen) == [
        (1.0, 0.0, 1.0, ["a", "b"], None, False),
        # "c" arrived exactly at 1.0: the window [0, 1) had closed
        (2.0, 1.0, 2.0, ["c", "d"], None, False),
        # no window for the empty [2, 3); the open one is flushed at the end
        (3.75, 3.0, 4.0, ["e"], None, True),
    ]


async def test_tumbling_emit_empty_reports_every_interval(autojump_clock: Any) -> None:
    sends = [(0.5, "a"), (3.5, "b")]
    seen = await _timeline(flowkit.tumbling_window(1.0, emit_empty=True), sends, end_at=4.0)
    assert [(at, w.items, w.partial) for at, w in seen] == [
        (1.0, ["a"], False),
        (2.0, [], False),
        (3.0, [], False),
        (4.0, ["b"], False),
    ]


async def test_empty_windows_behind_a_slow_consumer_are_one_span(autojump_clock: Any) -> None:
    op = flowkit.tumbling_window(1.0, emit_empty=True)
    seen = await _timeline(op, [(0.5, "a"), (10.5, "b")], end_at=16.5, pause=3.0)
    # The consumer takes a window every 3 s; the empty intervals that closed
    # meanwhile come as one window spanning them, never as a backlog.
    assert [(at, w.start, w.end, w.items) for at, w in seen] == [
        (1.0, 0.0, 1.0, ["a"]),
        (4.0, 1.0, 2.0, []),
        (7.0, 2.0, 4.0, []),
        (10.0, 4.0, 7.0, []),
        (13.0, 7.0, 10.0, []),
        # "b", sent at 10.5, was received at 13.0, after that send
        (16.0, 10.0, 13.0, []),
        (19.0, 13.0, 14.0, ["b"]),
        (22.0, 14.0, 16.0, []),
    ]


async def test_sliding_windows_overlap_and_hold_each_item_once(autojump_clock: Any) -> None:
    op = flowkit.sliding_window(1.0, 0.5)
    sends = [(0.25, "a"), (0.75, "b"), (1.25, "c")]
    seen = await _timeline(op, sends, end_at=3.0)
    assert _shape(seen) == [
        (0.5, -0.5, 0.5, ["a"], None, False),
        (1.0, 0.0, 1.0, ["a", "b"], None, False),
        (1.5, 0.5, 1.5, ["b", "c"], None, False),
        (2.0, 1.0, 2.0, ["c"], None, False),
    ]
    stats = op.statistics()
    assert (stats.items_in, stats.items_out, stats.emitted) == (3, 3, 4)
    assert stats.buffered_peak == 2  # "b" and "c", each held once


async def test_session_closes_a_gap_after_its_last_item(autojump_clock: Any) -> None:
    sends = [(0.0, 1), (0.25, 2), (0.5, 3), (1.5, 4), (1.75, 5)]
    seen = await _timeline(flowkit.session_window(0.5), sends, end_at=5.0)
    assert _shape(seen) == [
        (1.0, 0.0, 1.0, [1, 2, 3], None, False),
        (2.25, 1.5, 2.25, [4, 5], None, False),
    ]


async def test_sessions_per_key_close_independently(autojump_clock: Any) -> None:
    sends = [(0.0, "a1"), (0.25, "b1"), (0.5, "a2"), (1.0, "a3"), (2.0, "b2")]
    seen = await _timeline(flowkit.session_window(0.75, key=itemgetter(0)), sends, end_at=2.5)
    assert _shape(seen) == [
        (1.0, 0.25, 1.0, ["b1"], "b", False),
        (1.75, 0.0, 1.75, ["a1", "a2", "a3"], "a", False),
        (2.5, 2.0, 2.75, ["b2"], "b", True),
    ]


async def test_count_windows_close_with_their_last_item(autojump_clock: Any) -> None:
    sends = [(0.0, 1), (1.0, 2), (2.0, 3), (3.0, 4), (4.0, 5)]
    seen = await _timeline(flowkit.count_window(2), sends, end_at=6.0)
    assert _shape(seen) == [
        (1.0, 0.0, 1.0, [1, 2], None, False),
        (3.0, 2.0, 3.0, [3, 4], None, False),
        (6.0, 4.0, 4.0, [5], None, True),
    ]


async def test_keyed_tumbling_windows_share_the_grid(autojump_clock: Any) -> None:
    sends = [(0.1, "x1"), (0.2, "y1"), (0.3, "x2"), (1.5, "y2")]
    seen = await _timeline(flowkit.tumbling_window(1.0, key=itemgetter(0)), sends, end_at=2.0)
    assert _shape(seen) == [
        (1.0, 0.0, 1.0, ["x1", "x2"], "x", False),
        (1.0, 0.0, 1.0, ["y1"], "y", False),
        (2.0, 1.0, 2.0, ["y2"], "y", False),
    ]


# -- bounds -------------------------------------------------------------------


async def test_at_the_cap_upstream_waits_for_the_window_to_close(autojump_clock: Any) -> None:
    op = flowkit.tumbling_window(1.0, max_items=2)
    sent_at: list[float] = []
    up_send, up_receive = trio.open_memory_channel[int](0)
    down_send, down_receive = trio.open_memory_channel[Window[int]](0)

    async def produce() -> None:
        async with up_send:
            for i in range(4):
                await up_send.send(i)
                sent_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(op, up_receive, down_send)
        nursery.start_soon(produce)
        async with down_receive:
            got = [(trio.current_time(), w.items, w.partial) async for w in down_receive]
    # two items fill the window; the third waits until it closes at 1.0;
    # then the next window is full too, so even the end waits for it
    assert sent_at == [0.0, 0.0, 1.0, 1.0]
    assert got == [(1.0, [0, 1], False), (2.0, [2, 3], False)]
    assert op.statistics().buffered_peak == 2


async def test_keyed_count_window_at_the_cap_emits_its_oldest_window_early(
    autojump_clock: Any,
) -> None:
    op = flowkit.count_window(2, key=itemgetter(0), max_items=3)
    sends = [(0.0, "a1"), (1.0, "b1"), (2.0, "a2"), (3.0, "c1"), (4.0, "d1"), (5.0, "d2")]
    seen = await _timeline(op, sends, end_at=6.0)
    assert [(at, w.items, w.partial) for at, w in seen] == [
        (2.0, ["a1", "a2"], False),
        (4.0, ["b1"], True),  # b1, c1, d1 filled the stage: the oldest went early
        (5.0, ["d1", "d2"], False),
        (6.0, ["c1"], True),
    ]
    assert op.statistics().buffered_peak == 3


async def test_slow_consumer_backpressures_and_is_timed(autojump_clock: Any) -> None:
    op = flowkit.tumbling_window(1.0)
    sends = [(0.5, 1), (1.5, 2), (2.5, 3)]
    seen = await _timeline(op, sends, end_at=4.0, pause=2.0)
    assert [w.items for _, w in seen] == [[1], [2], [3]]
    assert op.statistics().send_blocked_seconds > 0


# -- end and error -------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: flowkit.tumbling_window(1.0),
        lambda: flowkit.session_window(1.0),
        lambda: flowkit.count_window(3),
    ],
)
async def test_upstream_crash_does_not_flush_as_a_clean_end(make: Any) -> None:
    async def boom() -> Any:
        yield 1
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        async with flowkit.open_pipeline(boom(), make()) as out:
            with pytest.raises(StreamAborted):
                async for _ in out:
                    pass


async def test_key_function_error_propagates(autojump_clock: Any) -> None:
    with pytest.raises(ZeroDivisionError):
        async with flowkit.open_pipeline(
            [1, 0], flowkit.tumbling_window(1, key=lambda x: 1 / x)
        ) as out:
            [w async for w in out]


# -- against a reference model -------------------------------------------------

_GAPS = st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 2.5]), max_size=30)
_KEYS = st.lists(st.integers(0, 2), min_size=1, max_size=5)


def _arrivals(gaps: list[float], keys: list[int]) -> list[tuple[float, tuple[int, int]]]:
    at, out = 0.0, []
    for i, gap in enumerate(gaps):
        at += gap
        out.append((at, (i, keys[i % len(keys)])))
    return out


def _reference(
    kind: str, arrivals: list[tuple[float, Any]], end: float, keyed: bool, **kw: float
) -> list[tuple[float, float, list[Any], Hashable, bool]]:
    """What the windows must be, computed without any of the operator's code."""
    key: Callable[[Any], Hashable] = (lambda item: item[1]) if keyed else (lambda item: None)
    out: list[tuple[float, float, list[Any], Hashable, bool]] = []
    if kind == "session":
        gap = kw["gap"]
        sessions: dict[Hashable, list[Any]] = {}
        for t, item in arrivals:
            k = key(item)
            for other, (first, last, items) in list(sessions.items()):
                if t >= last + gap:
                    out.append((first, last + gap, items, other, False))
                    del sessions[other]
            if k in sessions:
                sessions[k][1] = t
                sessions[k][2].append(item)
            else:
                sessions[k] = [t, t, [item]]
        for k, (first, last, items) in sessions.items():
            partial = last + gap > end
            out.append((first, last + gap, items, k, partial))
        return out
    size, every = kw["size"], kw["every"]
    j = math.floor(-size / every) + 1
    while arrivals and j * every <= arrivals[-1][0]:
        start, stop = j * every, j * every + size
        members = [item for t, item in arrivals if start <= t < stop]
        if stop <= end:  # closed before the end: one window per key that has items
            for k in dict.fromkeys(map(key, members)):
                out.append((start, stop, [m for m in members if key(m) == k], k, False))
        j += 1
    # Flushed at the end: the earliest window still open, with every item
    # not yet released (those at or after its start).
    j = math.floor((end - size) / every) + 1
    start, stop = j * every, j * every + size
    held = [item for t, item in arrivals if t >= start]
    for k in dict.fromkeys(map(key, held)):
        out.append((start, stop, [m for m in held if key(m) == k], k, True))
    return out


async def _run_model_case(
    op: Any, arrivals: list[tuple[float, Any]], end: float
) -> list[tuple[float, float, list[Any], Hashable, bool]]:
    seen = await _timeline(op, arrivals, end_at=end)
    return [(w.start, w.end, w.items, w.key, w.partial) for _, w in seen]


def _ordered(windows: list[Any]) -> list[Any]:
    return sorted(windows, key=lambda w: (w[1], w[0], repr(w[3])))


@settings(max_examples=150, deadline=None)
@given(
    gaps=_GAPS,
    keys=_KEYS,
    keyed=st.booleans(),
    shape=st.sampled_from([(1.0, 1.0), (1.0, 0.5), (1.0, 0.25), (0.5, 0.5), (2.0, 0.5)]),
)
def test_grid_windows_match_the_reference(
    gaps: list[float], keys: list[int], keyed: bool, shape: tuple[float, float]
) -> None:
    size, every = shape
    arrivals = _arrivals(gaps, keys)
    end = (arrivals[-1][0] if arrivals else 0.0) + 0.125  # off the grid
    key = itemgetter(1) if keyed else None
    make = (
        (lambda: flowkit.tumbling_window(size, key=key))
        if size == every
        else (lambda: flowkit.sliding_window(size, every, key=key))
    )
    got = trio.run(
        _run_model_case, make(), arrivals, end, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    want = _reference("grid", arrivals, end, keyed, size=size, every=every)
    assert _ordered(got) == _ordered(want)


@settings(max_examples=150, deadline=None)
@given(gaps=_GAPS, keys=_KEYS, keyed=st.booleans(), gap=st.sampled_from([0.25, 0.5, 1.0]))
def test_session_windows_match_the_reference(
    gaps: list[float], keys: list[int], keyed: bool, gap: float
) -> None:
    arrivals = _arrivals(gaps, keys)
    end = (arrivals[-1][0] if arrivals else 0.0) + 0.125
    op = flowkit.session_window(gap, key=itemgetter(1) if keyed else None)
    got = trio.run(
        _run_model_case, op, arrivals, end, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    assert _ordered(got) == _ordered(_reference("session", arrivals, end, keyed, gap=gap))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 40), size=st.integers(1, 5), keys=_KEYS, keyed=st.booleans())
def test_count_windows_match_the_reference(n: int, size: int, keys: list[int], keyed: bool) -> None:
    arrivals = _arrivals([0.25] * n, keys)
    op = flowkit.count_window(size, key=itemgetter(1) if keyed else None)
    got = trio.run(
        _run_model_case, op, arrivals, 100.0, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    want: list[Any] = []
    open_: dict[Hashable, list[Any]] = {}
    for _, item in arrivals:
        k = item[1] if keyed else None
        open_.setdefault(k, []).append(item)
        if len(open_[k]) == size:
            want.append((open_.pop(k), k, False))
    want += [(items, k, True) for k, items in open_.items()]
    assert [(w[2], w[3], w[4]) for w in got] == want


@pytest.mark.parametrize("kind", sorted(WINDOWS))
@settings(max_examples=40, deadline=None)
@given(plan=_scenario.plans, n=st.integers(min_value=0, max_value=40))
def test_window_properties_under_random_pacing(kind: str, plan: _scenario.Plan, n: int) -> None:
    make, bound = WINDOWS[kind]
    outcome = _scenario.run(make, list(range(n)), plan, bound=bound)
    carried = _items(outcome.outputs)
    if "sliding" in kind:  # an item is in several windows; each at least once, in order
        assert list(dict.fromkeys(sorted(carried))) == list(range(n))
    else:  # lossless, every item once
        assert sorted(carried) == list(range(n))
        if "keyed" not in kind:
            assert carried == list(range(n))
    assert all(w.items or kind == "tumbling_empty" for w in outcome.outputs)
    assert outcome.final.emitted == len(outcome.outputs)
