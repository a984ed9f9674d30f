"""Suite-wide fixtures: the real system parts, installed once per run by the project's scripts."""

from __future__ import annotations

import pytest

from ._system import installed_binary


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Path of an nginx binary; installs Debian's ``nginx-light`` via ``.ci/nginx.sh``."""
    return installed_binary("nginx.sh", "the nginx tests")


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """Path of redis-server; installs Debian's package via ``.ci/redis.sh``."""
    return installed_binary("redis.sh", "tests/flowkit_redis")
