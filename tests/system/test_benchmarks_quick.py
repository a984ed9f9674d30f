"""The benchmark suite's quick modes still run and print their ratio line.

Each benchmark runs in a subprocess (it starts its own servers on
127.0.0.1 and stops them by PID) with ``--quick``; the numbers are not
checked — this only keeps the suite from rotting.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("uvicorn")
pytest.importorskip("mcp.server.mcpserver")

QUICK = {
    "pipeline": [
        "--items",
        "50000",
        "--naive-items",
        "10000",
        "--repeat",
        "1",
        "--memory-sizes",
        "",
    ],
    "mcp": ["--quick"],
    "client": ["--quick"],
    "attacks": ["--quick"],
    "consumer_groups": ["--quick"],
    "concurrent": ["--quick", "--sessions", "20", "--count", "5"],
    "idle": ["--quick", "--sessions", "50", "--hold", "1"],
    "burst": ["--quick", "--sessions", "50"],
    "cpu": ["--quick"],
    "slow_consumer": ["--quick", "--duration", "2"],
    "batching": ["--quick", "--count", "1000"],
    "metrics_overhead": ["--quick"],
    "stdio": ["--quick"],
    "windows": ["--quick"],
    "redis_store": ["--quick"],  # + --redis-server (the redis_binary fixture)
    "workers": ["--quick"],  # + --redis-server (the redis_binary fixture)
    "cross_instance": ["--quick"],  # the same
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(QUICK))
def test_quick_mode_prints_ratio(name: str, request: pytest.FixtureRequest) -> None:
    extra = []
    if name in ("redis_store", "workers", "cross_instance"):
        extra = ["--redis-server", request.getfixturevalue("redis_binary")]
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *QUICK[name], *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # three servers each (flowkit, official, FastMCP)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    assert re.match(r"ratio=\S+ ", lines[-1]), proc.stdout[-2000:]
    assert "|" in proc.stdout  # a table came first
    if name == "cpu":  # each server's CPU per start against the floor's
        assert re.search(r"^flowkit: CPU per start \d+ us = \S+x the floor's", proc.stdout, re.M)
