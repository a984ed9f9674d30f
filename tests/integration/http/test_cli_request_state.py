"""``$FLOWKIT_REQUEST_STATE_KEYS``: the keys sealing requestState, for ``flowkit serve``.

In the environment (not argv, which ``ps`` shows); base64url, comma-separated,
the sealing key first. A bad value is one line and exit status 1.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from flowkit_http._serve_flags import request_state_keys


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def test_keys_parse_in_order() -> None:
    new, old = b"n" * 32, b"o" * 16
    assert request_state_keys(f"{_b64(new)}, {_b64(old)}") == (new, old)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!!", "a key is not base64url"),
        (_b64(b"short"), "keys are 16, 24 or 32 bytes, not 5"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_1(value: str, message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flowkit_http", "serve", "--demo", "--port", "0"],
        env={**os.environ, "FLOWKIT_REQUEST_STATE_KEYS": value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done
    assert done.stderr.splitlines() == [
        f"flowkit serve: error: FLOWKIT_REQUEST_STATE_KEYS: {message}"
    ]
