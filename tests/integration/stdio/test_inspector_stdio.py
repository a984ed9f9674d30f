"""The MCP Inspector CLI launches ``flowkit serve --stdio --demo`` and uses it.

``npx -y @modelcontextprotocol/inspector --cli COMMAND ...`` is how the
Inspector runs a stdio server. It needs Node >= 22.19 first on ``PATH``
(older ones silently run Inspector 0.15), so the test uses the Node that the
conformance suite installs into ``.cache/node`` and skips when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import trio

from ...system.conformance.suite import node_binary
from ._support import ROOT

pytestmark = pytest.mark.slow


async def _inspector(*args: str) -> object:
    node = node_binary()
    if not node.exists():
        pytest.skip("Node 22 is not installed in .cache/node (run the conformance suite once)")
    path = f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    npx = shutil.which("npx", path=path)
    if npx is None:
        pytest.skip("npx is not installed")
    env = {**os.environ, "PATH": path}
    command = [sys.executable, "-m", "flowkit_http", "serve", "--stdio", "--demo"]
    done = await trio.run_process(
        [
            npx,
            "-y",
            "@modelcontextprotocol/inspector",
            "--cli",
            *command,
            *args,
        ],
        capture_stdout=True,
        capture_stderr=True,
        cwd=ROOT,
        env=env,
    )
    return json.loads(done.stdout)


async def test_inspector_lists_and_calls_over_stdio() -> None:
    with trio.fail_after(300):
        listed = await _inspector("--method", "tools/list")
        called = await _inspector(
            "--method", "tools/call", "--tool-name", "ticker", "--tool-arg", "count=4"
        )
    assert isinstance(listed, dict)
    assert [tool["name"] for tool in listed["tools"]][:1] == ["ticker"]
    assert isinstance(called, dict)
    assert called["structuredContent"] == {"count": 4}
