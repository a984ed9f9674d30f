"""Programs the system tests run next to flowkit, installed by the project's own script.

``.ci/debian.sh BINARY PACKAGE...`` installs Debian's package when the binary
is missing (nginx for the reverse-proxy tests, prometheus for the scrape
test, chromium for the dashboard test) and prints the binary's path.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def debian_binary(binary: str, *packages: str, needed_by: str) -> str:
    """Path of ``binary``, installing the first of ``packages`` that apt-get has.

    Fails (never skips) when it cannot be installed: the guarantees these
    programs check are part of the suite.
    """
    script = ROOT / ".ci" / "debian.sh"
    try:
        done = subprocess.run(
            [str(script), binary, *packages],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {script} to install {binary}: {exc}")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(
            f"{binary} is required by {needed_by} and {script} could not install it "
            f"(exit {done.returncode}); apt-get must be available, or install Debian's "
            f"{packages[0]} yourself.\n{done.stderr[-2000:]}"
        )
    return done.stdout.strip().splitlines()[-1]
