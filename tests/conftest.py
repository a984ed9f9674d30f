"""Suite-wide fixtures: the real system parts, installed once per run by the project's script."""

from __future__ import annotations

import pytest

from ._system import debian_binary


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
