"""A tool asks its client over stdio: the official SDK 2.x client answers, in both eras.

Handshake era: the ``elicitation/create`` and ``roots/list`` requests are
lines on stdout and the answers lines on stdin, correlated by id. Stateless
era: the same tool ends with input-required results and is replayed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio
from mcp import Client, StdioServerParameters, types

from ._support import ROOT, serve_command


async def _ask(mode: str) -> tuple[str | None, str]:
    command = serve_command()
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(ROOT))

    async def on_elicit(context: Any, request: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def on_roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work")])

    async def main() -> tuple[str | None, str]:
        async with Client(  # type: ignore[arg-type]
            params, mode=mode, elicitation_callback=on_elicit, list_roots_callback=on_roots
        ) as client:
            result = await client.call_tool("ask_name", {})
            block = result.content[0]
            assert isinstance(block, types.TextContent), result
            return client.protocol_version, block.text

    return await trio.to_thread.run_sync(asyncio.run, main(), abandon_on_cancel=True)


@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
async def test_sdk2_stdio_client_answers_a_tools_questions(mode: str, version: str) -> None:
    with trio.fail_after(60):
        seen = await _ask(mode)
    assert seen == (version, "accept: Ada in file:///work")
