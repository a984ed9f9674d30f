"""Reliability suite fixtures: nginx, installed once per run by the project's own script."""

from __future__ import annotations

import pytest

from .._system import installed_binary


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Path of an nginx binary; installs Debian's ``nginx-light`` via ``.ci/nginx.sh``."""
    return installed_binary("nginx.sh", "tests/reliability/test_nginx.py")
