"""The official SDK stdio clients (2.x and 1.x) launch and use ``flowkit serve --stdio``.

The 2.x client runs on asyncio in a worker thread (see ``tests/integration/http/_sdk.py``)
in both of its modes: ``"legacy"`` (the 2025-11-25 handshake) and ``"auto"``
(it probes ``server/discover`` and adopts 2026-07-28). The 1.x client runs in
its own virtual environment (``tests/integration/http/test_sdk1_client.py``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from mcp import Client, StdioServerParameters

from ..http.test_sdk1_client import sdk1_python  # noqa: F401 (the fixture)
from ._support import ROOT, TARGET, serve_command


async def _use(mode: str) -> dict[str, Any]:
    command = serve_command()
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(ROOT))

    async def main() -> dict[str, Any]:
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
            tools = await client.list_tools()
            result = await client.call_tool("ticker", {"count": 25}, progress_callback=on_progress)
            noisy = await client.call_tool("noisy", {"count": 3})
            failed = await client.call_tool("boom", {"after": 2})
            return {
                "version": client.protocol_version,
                "tools": [tool.name for tool in tools.tools],
                "structured": result.structured_content,
                "progress": progress,
                "noisy": noisy.is_error,
                "boom": failed.is_error,
            }

    return await trio.to_thread.run_sync(asyncio.run, main(), abandon_on_cancel=True)


@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
async def test_sdk2_stdio_client_lists_and_calls_with_progress(mode: str, version: str) -> None:
    with trio.fail_after(60):
        seen = await _use(mode)
    assert seen["version"] == version
    assert seen["tools"][:2] == ["ticker", "analyze_document"]
    assert seen["structured"] == {"count": 25}
    assert seen["progress"] == list(range(1, 26))
    assert seen["noisy"] is False  # its prints did not corrupt the stream
    assert seen["boom"] is True


async def test_sdk1_stdio_client_lists_and_calls_with_progress(sdk1_python: Path) -> None:  # noqa: F811
    client = Path(__file__).parent / "sdk1_client.py"
    with trio.fail_after(120):
        done = await trio.run_process(
            [str(sdk1_python), str(client), sys.executable, TARGET],
            capture_stdout=True,
            cwd=ROOT,
        )
    seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert seen["protocol"] == "2025-11-25"
    assert seen["tools"][:2] == ["ticker", "analyze_document"]
    assert seen["structured"] == {"count": 20}
    assert seen["progress"] == [float(i) for i in range(1, 21)]
    assert seen["noisy_is_error"] is False
    assert seen["boom_is_error"] is True
