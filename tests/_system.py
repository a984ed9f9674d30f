"""Real system parts the tests start themselves, installed by the project's own scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def installed_binary(script: str, needed_by: str) -> str:
    """Run ``.ci/<script>`` (installs a Debian package when missing) and return the binary's path.

    Fails (never skips) when it cannot install: these parts are part of the
    suite's guarantees.
    """
    path = ROOT / ".ci" / script
    try:
        done = subprocess.run([str(path)], capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {path}: {exc}")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(
            f"{needed_by} needs what {path} installs, and it could not (exit {done.returncode}); "
            f"apt-get must be available.\n{done.stderr[-2000:]}"
        )
    return done.stdout.strip().splitlines()[-1]
