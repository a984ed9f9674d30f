"""Reliability suite fixtures: nginx, installed once per run by the project's own script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Path of an nginx binary; installs Debian's ``nginx-light`` via ``.ci/nginx.sh``.

    Fails (never skips) when it cannot be installed: the reverse-proxy
    guarantees are part of the suite.
    """
    script = ROOT / ".ci" / "nginx.sh"
    try:
        done = subprocess.run(
            [str(script)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {script} to install nginx: {exc}")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(
            f"nginx is required by tests/reliability/test_nginx.py and {script} could not "
            f"install it (exit {done.returncode}); apt-get must be available, or install "
            f"nginx-light yourself.\n{done.stderr[-2000:]}"
        )
    return done.stdout.strip().splitlines()[-1]
