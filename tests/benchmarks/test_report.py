"""``benchmarks.report`` rewrites the sections it ran and keeps every other one.

A ``--full`` regeneration used to write the page from nothing, dropping the
hand-written analyses and the sections of benchmarks outside its suite
(stdio, client, redis_store, consumer groups, workers).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import merge_sections

PAGE = Path(__file__).parents[2] / "docs" / "benchmarks.md"

KEPT = """# Benchmarks

preamble of an earlier run

## Hand-written analysis

why the tail is a queue

## A burst of sessions (`python -m benchmarks.burst`)

old table

## One stream over stdio (`python -m benchmarks.stdio`)

kept table
"""


def test_a_run_replaces_its_sections_in_place_and_keeps_the_rest() -> None:
    burst = "## A burst of sessions (`python -m benchmarks.burst`)"
    new = "## Something new (`python -m benchmarks.new`)"
    merged = "\n".join(
        merge_sections(KEPT, {burst: [burst, "", "new table", ""], new: [new, "", "fresh", ""]})
    )
    assert "preamble of an earlier run" not in merged  # the run writes its own
    assert "old table" not in merged
    assert merged.index("## Hand-written analysis") < merged.index("new table")
    assert merged.index("new table") < merged.index("kept table") < merged.index("fresh")
    assert "why the tail is a queue" in merged


def test_the_real_page_survives_a_run_that_generates_nothing() -> None:
    text = PAGE.read_text()
    merged = "\n".join(merge_sections(text, {}))
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == [line for line in merged.splitlines() if line.startswith("## ")]
    after_preamble = "## " + text.split("\n## ", 1)[1]
    assert merged.split() == after_preamble.split()  # every word kept, in order
