"""The streaming-native resource (``LiveResource``), on trio's MockClock.

What is checked: reads return the newest item at every moment;
``resources/updated`` goes out at most once per interval, the first at once,
with what arrived meanwhile conflated into the next one; a burst is one
value, never a queue; a read before the first item waits for it, and a read
that can never be answered fails instead of hanging; a failing pipeline is
logged and keeps its last value; one pipeline runs at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit
from flowkit_http import LiveResource, LiveResourceStatistics, MCPServer, ToolPipeline

from .._budget import examples

URI = "sensor://temperature"


async def _every(seconds: float, values: list[object]) -> AsyncIterator[object]:
    """``values[i]`` at ``start + i * seconds``."""
    start = trio.current_time()
    for i, value in enumerate(values):
        await trio.sleep_until(start + i * seconds)
        yield value


async def test_updates_are_paced_by_the_interval_and_reads_see_the_newest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    live = LiveResource(URI, lambda: _every(0.3, list(range(8))), interval=1.0)
    seen: list[tuple[float, object]] = []
    start = trio.current_time()

    async with trio.open_nursery() as nursery:

        def updated(uri: str) -> None:
            assert uri == URI
            nursery.start_soon(record)

        async def record() -> None:
            seen.append((trio.current_time() - start, await live.read()))

        await live.run(updated)

    # Items at 0, 0.3, ..., 2.1 s; updates at most once a second, the first
    # at once, each read returning the newest item at that moment.
    assert [round(t, 6) for t, _ in seen] == [0.0, 1.0, 2.0, 3.0]
    assert [value for _, value in seen] == [0, 3, 6, 7]
    assert live.statistics() == LiveResourceStatistics(items=8, updates=4, running=False)


async def test_a_burst_is_one_value_and_two_updates_never_a_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    live = LiveResource(URI, lambda: range(10_000), interval=1.0)
    updates: list[float] = []
    start = trio.current_time()
    await live.run(lambda uri: updates.append(trio.current_time() - start))
    assert await live.read() == 9_999
    # The first at once, then the newest once the interval passed: 9,998
    # items conflated, nothing queued.
    assert updates == [0.0, 1.0]
    assert live.statistics().items == 10_000


async def test_a_read_before_the_first_item_waits_for_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: list[tuple[float, object]] = []

    async def source() -> AsyncIterator[str]:
        await trio.sleep(5)
        yield "first"
        await trio.sleep_forever()

    live = LiveResource(URI, source, interval=1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(live.run, lambda uri: None)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        value = await live.read()
        got.append((trio.current_time() - start, value))
        nursery.cancel_scope.cancel()
    assert got == [(5.0, "first")]
    assert live.statistics().running is False
    assert await live.read() == "first"  # the last value outlives the run


async def test_reads_that_could_never_be_answered_fail_instead_of_hanging(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def nothing() -> AsyncIterator[str]:
        await trio.sleep(2)
        return
        yield  # an async generator that ends without an item

    live = LiveResource(URI, nothing, interval=1.0)
    with pytest.raises(RuntimeError, match="not running"):
        await live.read()  # nothing runs it
    failures: list[str] = []

    async def reader() -> None:
        with pytest.raises(RuntimeError, match="has no value") as caught:
            await live.read()
        failures.append(str(caught.value))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(live.run, lambda uri: None)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(reader)
    assert len(failures) == 1


async def test_a_failing_pipeline_is_logged_and_keeps_its_last_value(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def flaky() -> AsyncIterator[str]:
        yield "last good"
        await trio.sleep(1)
        raise OSError("sensor unplugged")

    live = LiveResource(URI, lambda: ToolPipeline(flaky(), flowkit.map(str.upper)), interval=1.0)
    await live.run(lambda uri: None)  # returns: the server goes on
    assert await live.read() == "LAST GOOD"
    [record] = [r for r in caplog.records if r.getMessage() == f"live resource {URI} failed"]
    assert record.exc_info is not None
    assert "sensor unplugged" in str(record.exc_info[1])


async def test_one_pipeline_at_a_time_a_second_runner_takes_over(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started: list[float] = []

    async def forever() -> AsyncIterator[int]:
        started.append(trio.current_time())
        n = 0
        while True:
            yield n
            n += 1
            await trio.sleep(1)

    live = LiveResource(URI, forever, interval=1.0)
    async with trio.open_nursery() as nursery:
        first = trio.CancelScope()

        async def run_first() -> None:
            with first:
                await live.run(lambda uri: None)

        nursery.start_soon(run_first)
        await trio.sleep(0.5)
        nursery.start_soon(live.run, lambda uri: None)
        await trio.sleep(10)
        assert len(started) == 1  # the second app's run waits its turn
        first.cancel()
        await trio.sleep(0.5)
        assert len(started) == 2
        assert live.statistics().running
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("interval", [0, -1, float("inf"), float("nan"), "1"])
def test_the_interval_must_be_a_positive_number(interval: object) -> None:
    with pytest.raises(ValueError, match="interval must be"):
        LiveResource(URI, lambda: (), interval=interval)  # type: ignore[arg-type]


def test_declared_on_a_server_it_is_a_resource_and_a_live_resource() -> None:
    server = MCPServer("live")

    @server.live_resource(URI, interval=0.5, mime_type="application/json")
    async def temperature() -> AsyncIterator[float]:
        """The current temperature, in degrees Celsius."""
        yield 21.5

    [resource] = server.resources.resources
    assert resource.to_json() == {
        "uri": URI,
        "name": "temperature",
        "description": "The current temperature, in degrees Celsius.",
        "mimeType": "application/json",
    }
    assert resource.ttl_ms == 0  # 2026-07-28 clients re-fetch: it changes any moment
    [live] = server.live_resources
    assert (live.uri, live.interval) == (URI, 0.5)


@settings(max_examples=examples(100), deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 2.5]), min_size=1, max_size=30),
    interval=st.sampled_from([0.2, 1.0, 3.0]),
)
def test_pacing_property_any_arrival_schedule(gaps: list[float], interval: float) -> None:
    """For any arrival times: updates at least ``interval`` apart, the first with
    the first item, the last after the last item, never an older value."""

    async def main() -> tuple[list[float], list[tuple[float, int, int]]]:
        arrivals: list[float] = []
        notes: list[tuple[float, int, int]] = []  # (time, value read, newest arrived)

        async def source() -> AsyncIterator[int]:
            for i, gap in enumerate(gaps):
                await trio.sleep(gap)
                arrivals.append(trio.current_time())
                yield i

        live = LiveResource(URI, source, interval=interval)

        def updated(uri: str) -> None:
            value = live._value  # what a read now returns, taken synchronously
            notes.append((trio.current_time(), value, len(arrivals) - 1))

        await live.run(updated)
        return arrivals, notes

    arrivals, notes = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    times = [t for t, _, _ in notes]
    assert times[0] == arrivals[0]
    assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(times))
    assert notes[-1][1] == len(gaps) - 1  # the newest item always gets its update
    values = [value for _, value, _ in notes]
    # Never an older value than the update before. (Equal happens: items that
    # arrive together are stored together, before the first goes out at once.)
    assert values == sorted(values)
    assert all(value <= newest for _, value, newest in notes)
    assert len(notes) <= len(gaps)
