"""Suite-wide fixtures: the real system parts, installed once per run by the project's script."""

from __future__ import annotations

import pytest
from hypothesis import settings

from ._system import debian_binary

# No per-example deadline: Hypothesis's 200 ms default is a timing check, and on
# this 2-core machine shared by the suite's servers one example of
# tests/flowkit/mcp/test_asks.py took 590 ms under load (7 ms alone) and failed.
# Correctness is in the assertions; speed is the benchmarks' business.
settings.register_profile("flowkit", deadline=None)
settings.load_profile("flowkit")


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Path of an nginx binary; installs Debian's ``nginx-light`` via ``.ci/debian.sh``."""
    return debian_binary("nginx", "nginx-light", "nginx", needed_by="the nginx tests")


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """Path of redis-server; installs Debian's package via ``.ci/debian.sh``."""
    return debian_binary(
        "redis-server", "redis-server", needed_by="tests/integration/flowkit_redis"
    )
