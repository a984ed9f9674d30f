"""The demo's tool schemas are portable (MCP Inspector 2.x checks them) and its results match them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import flowkit
from flowkit_http import Result
from flowkit_http._demo import analyze_document, server


def _types(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        if "type" in node:
            yield node["type"]
        for value in node.values():
            yield from _types(value)
    elif isinstance(node, list):
        for value in node:
            yield from _types(value)


def test_every_schema_has_one_type_per_node() -> None:
    """Inspector 2.x warns on `type` arrays (["string", "null"]): a single-type dialect rejects them."""
    listed = [tool.to_json() for tool in server.tools]
    types = [t for tool in listed for t in _types([tool["inputSchema"], tool.get("outputSchema")])]
    assert types
    assert all(isinstance(t, str) for t in types), types


@pytest.mark.parametrize(
    ("text", "longest"), [("# Intro\none two\n# Body\nthree four five\n", "Body"), ("", None)]
)
async def test_analyze_document_result_matches_its_schema(text: str, longest: str | None) -> None:
    async with flowkit.open_pipeline(analyze_document(text)) as out:
        items = [item async for item in out]
    result = items[-1]
    assert isinstance(result, Result)
    assert result.structured is not None
    assert result.structured.get("longest_section") == longest
    tool = server.tools.get("analyze_document")
    assert tool is not None
    tool.validate_structured_content(result.structured)  # raises on a mismatch
