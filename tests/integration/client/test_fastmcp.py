"""The client against a FastMCP server, over Streamable HTTP and stdio, in both eras it offers.

FastMCP pins its own ``mcp`` release and pulls in a server stack of its own
(uvicorn, cyclopts, authlib, ...), so, like the 1.x SDK of
``tests/http/test_sdk1_client.py``, it gets a virtual environment of its own
under ``.cache/fastmcp``, created on first use from PyPI with a pinned
version, and the server runs there as a child process
(``tests/integration/client/peers/fastmcp_server.py``). The client under test runs here.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from benchmarks._servers import fastmcp_python as fastmcp_venv_python
from flowkit_client import LogMessage, Progress, open_client, open_stdio_client

from ..._system import free_port, listening_process

SERVER = Path(__file__).parent / "peers" / "fastmcp_server.py"
ERAS = ["2026-07-28", "2025-11-25"]


@pytest.fixture(scope="module")
def fastmcp_python() -> Path:
    """FastMCP's own venv, shared with the benchmarks (``benchmarks._servers``)."""
    return Path(fastmcp_venv_python())


@pytest.fixture
async def fastmcp_url(fastmcp_python: Path) -> AsyncIterator[str]:
    """The FastMCP server over Streamable HTTP on a free port; yields its endpoint."""
    port = free_port()
    async with listening_process(
        [str(fastmcp_python), str(SERVER), "--port", str(port)], port, start_within=60
    ):
        yield f"http://127.0.0.1:{port}/mcp"


async def test_auto_negotiates_2026_with_fastmcp_over_http(fastmcp_url: str) -> None:
    async with open_client(fastmcp_url) as client:
        assert client.server.protocol_version == "2026-07-28"
        assert client.server.name == "fastmcp-test"
        assert [tool.name for tool in await client.list_tools()] == ["ticker", "chatty"]


@pytest.mark.parametrize("era", ERAS)
async def test_progress_logs_and_result_from_fastmcp_over_http(fastmcp_url: str, era: str) -> None:
    with trio.fail_after(60):
        async with open_client(fastmcp_url, era=era) as client:  # type: ignore[arg-type]
            assert client.server.protocol_version == era
            async with client.call_tool("ticker", {"count": 4}) as call:
                events = [event async for event in call]
            async with client.call_tool("chatty", {"count": 2}) as call:
                logs = [e.data async for e in call if isinstance(e, LogMessage)]
    assert events[:4] == [Progress(i, 4, f"tick {i}/4") for i in range(1, 5)]
    assert events[4].structured == {"count": 4}  # type: ignore[union-attr]
    assert [log["msg"] for log in logs] == ["line 1", "line 2"]


@pytest.mark.parametrize("era", ERAS)
async def test_progress_and_result_from_fastmcp_over_stdio(fastmcp_python: Path, era: str) -> None:
    command = [str(fastmcp_python), str(SERVER), "--stdio"]
    with trio.fail_after(60):
        async with open_stdio_client(
            command,
            era=era,  # type: ignore[arg-type]
            stderr=subprocess.DEVNULL,
        ) as client:
            assert client.server.protocol_version == era
            assert [tool.name for tool in await client.list_tools()] == ["ticker", "chatty"]
            async with client.call_tool("ticker", {"count": 3}) as call:
                progress = [e.progress async for e in call if isinstance(e, Progress)]
                result = await call.result()
    assert progress == [1, 2, 3]
    assert result.structured == {"count": 3}
