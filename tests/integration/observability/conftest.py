"""Observability fixtures: Prometheus and Chromium, installed by the project's own script."""

from __future__ import annotations

import pytest

from tests._system import debian_binary


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """Debian's ``prometheus`` (installed via ``.ci/debian.sh`` when missing)."""
    return debian_binary(
        "prometheus", "prometheus", needed_by="tests/integration/observability/test_prometheus.py"
    )


@pytest.fixture(scope="session")
def chromium_binary() -> str:
    """Debian's ``chromium`` (installed via ``.ci/debian.sh`` when missing)."""
    return debian_binary(
        "chromium", "chromium", needed_by="tests/integration/observability/test_dashboard.py"
    )
