"""Reliability suite fixtures: nginx, installed once per run by the project's own script."""

from __future__ import annotations

import pytest

from tests._system import debian_binary


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Path of an nginx binary; installs Debian's ``nginx-light`` via ``.ci/debian.sh``."""
    return debian_binary(
        "nginx", "nginx-light", "nginx", needed_by="tests/reliability/test_nginx.py"
    )
