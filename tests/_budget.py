"""Fuzzing budgets: modest in the default run, large with ``FLOWKIT_FUZZ_LONG=1``.

``FLOWKIT_FUZZ_LONG=1 .venv/bin/python -m pytest tests/flowkit/mcp/test_endpoint.py
tests/integration/reliability/test_fuzz.py -k core`` runs the protocol-core fuzzers with
at least 100,000 examples in total (docs/guarantees.md reports a run).
"""

from __future__ import annotations

import os

LONG = os.environ.get("FLOWKIT_FUZZ_LONG", "") not in ("", "0")


def examples(default: int, long: int = 25_000) -> int:
    """Hypothesis ``max_examples``: ``default`` normally, ``long`` in the long mode."""
    return long if LONG else default
