"""benchmarks.concurrent reads each server's run against its own pair's floor."""

from __future__ import annotations

from benchmarks.concurrent import Outcome, paired_floor


def _run(server: str, c: int, late_p99: float) -> Outcome:
    return Outcome(server, c, c, 0, 1.0, 1.0, 1.0, 1.0, late_p99, 1.0, 0.1)


def test_each_run_is_read_against_the_floor_run_last_before_it() -> None:
    runs = [
        _run("flowkit", 500, 9.0),  # before any floor: the first one after it
        _run("floor", 500, 1.0),
        _run("flowkit", 500, 9.0),
        _run("floor", 200, 2.0),  # another C: never a 500's floor
        _run("floor", 500, 3.0),
        _run("flowkit", 500, 9.0),
        _run("flowkit", 1000, 9.0),  # no floor at its C
    ]
    floors = [paired_floor(runs, i) for i, run in enumerate(runs) if run.server != "floor"]
    assert [f.late_p99_ms if f else None for f in floors] == [1.0, 1.0, 3.0, None]
