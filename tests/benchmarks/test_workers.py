"""benchmarks.workers hands its load's shape to benchmarks.concurrent's runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks import concurrent, workers


def test_ramp_and_eras_reach_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[dict[str, Any]] = []

    def run_one(name: str, c: int, count: int, interval_ms: int, extra: Any, **kw: Any) -> Any:
        runs.append({"extra": list(extra), **kw})
        return concurrent.Outcome(name, c, c, 0, 100.0, 1, 1, 1, 1, 1, 0.1)

    @contextlib.contextmanager
    def own_redis(binary: str | None) -> Iterator[str]:
        yield "redis://127.0.0.1:1/0"

    monkeypatch.setattr(concurrent, "run_one", run_one)
    monkeypatch.setattr(workers, "own_redis", own_redis)
    argv = ["--sessions", "5", "--ramp-ms", "1000", "--eras", "2025-11-25"]
    outcomes = workers.main(argv)
    assert [o.server for o in outcomes] == [
        "flowkit --workers 1 (2025-11-25)",
        "flowkit --workers 2 (2025-11-25)",
    ]
    assert [(r["ramp_ms"], r["era"]) for r in runs] == [(1000, "2025-11-25")] * 2
    assert [r["extra"][-1] for r in runs] == ["1", "2"]  # --workers 1, then 2
    assert runs[0]["extra"][1] != runs[1]["extra"][1]  # a database each
