"""flowkit.mcp's ``__init__``: sans-IO in fact, and public names by one rule.

A fresh ``import flowkit.mcp`` loads no I/O and no operator. Checked in a
fresh interpreter through ``sys.modules``, so an import hidden anywhere
(another package's ``__init__``, a transitive dependency) counts, not just
the import lines of the core's own files.

Every public name is listed in docs/mcp.md ("Public names"), and no page
names one that moved into a private module ("What moved") as if it were
still public.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import flowkit
import flowkit.mcp

# Event loops, web frameworks, sockets: none of them may load with the core.
IO_MODULES = {
    "anyio",
    "asyncio",
    "hypercorn",
    "outcome",
    "quart",
    "quart_trio",
    "selectors",
    "sniffio",
    "socket",
    "trio",
}


def loaded_after(statement: str) -> set[str]:
    """The ``sys.modules`` keys of a fresh interpreter after running ``statement``."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


def test_importing_the_core_loads_no_io_module() -> None:
    loaded = loaded_after("import flowkit.mcp")
    assert "flowkit.mcp._endpoint" in loaded  # the probe saw the core load
    assert {name.split(".")[0] for name in loaded} & IO_MODULES == set()


def test_importing_the_core_loads_no_channel_pipeline_or_operator() -> None:
    """Layers point down: the core needs FlowkitError and check_count, never a channel or operator."""
    loaded = loaded_after("import flowkit.mcp")
    assert {"flowkit._exceptions", "flowkit._checks"} <= loaded
    # every module behind a lazily bound name of flowkit's (channels, pipelines, operators)
    behind_lazy_names = {f"flowkit{module}" for module in flowkit._LAZY.values()}
    assert {"flowkit._channel", "flowkit._pipeline", "flowkit._transform"} <= behind_lazy_names
    assert loaded & (behind_lazy_names | {"flowkit.testing"}) == set()


def test_the_probe_sees_what_an_eager_import_loads() -> None:
    """Guards the two tests above: an import that does load trio and operators is seen as such."""
    loaded = loaded_after("import flowkit\nflowkit.open_pipeline")
    assert {"trio", "flowkit._transform", "flowkit._pipeline"} <= loaded


def test_public_names_are_exported() -> None:
    for name in flowkit.mcp.__all__:
        assert hasattr(flowkit.mcp, name), name
    assert sorted(flowkit.mcp.__all__) == sorted(set(flowkit.mcp.__all__))


ROOT = Path(__file__).resolve().parents[3]
MCP_DOC = ROOT / "docs" / "mcp.md"


def moved_names() -> dict[str, str]:
    """The "What moved" table of docs/mcp.md: name -> the private module it lives in."""
    text = MCP_DOC.read_text(encoding="utf-8")
    table = text.split("### What moved", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (\w+) \| (flowkit\.mcp\._\w+) \|$", table, re.MULTILINE)
    assert rows, "docs/mcp.md has a What moved table"
    return dict(rows)


def code_span_starting_with(name: str) -> re.Pattern[str]:
    """A Markdown code span that begins with ``name``: `name`, `name(...)`, `name.attr`."""
    return re.compile(rf"`{re.escape(name)}(?![\w])")


def test_every_public_name_is_documented_in_mcp_md() -> None:
    text = MCP_DOC.read_text(encoding="utf-8")
    missing = [n for n in flowkit.mcp.__all__ if not code_span_starting_with(n).search(text)]
    assert missing == [], f"public but not in docs/mcp.md: {missing}"


def test_moved_names_are_private_and_live_where_the_docs_say() -> None:
    for name, module in moved_names().items():
        assert name not in flowkit.mcp.__all__, name
        assert not hasattr(flowkit.mcp, name), name
        assert hasattr(importlib.import_module(module), name), (name, module)


def test_no_page_names_a_moved_name_as_public() -> None:
    """Prose may name a private one by its module (`_stream.STREAM_TRANSITIONS`), never bare."""
    moved = moved_names()
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        if page == MCP_DOC:
            text = (
                text.split("### What moved", 1)[0]
                + text.split("### What moved", 1)[1].split("\n#", 1)[1]
            )
        for name in moved:
            if code_span_starting_with(name).search(text) or f"flowkit.mcp.{name}" in text:
                found.append((page.name, name))
        for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL):
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom) and node.module == "flowkit.mcp":
                    found += [(page.name, a.name) for a in node.names if a.name in moved]
    assert found == []


def test_the_moved_check_sees_a_bare_mention() -> None:
    """Guards the test above: its pattern finds a moved name in a code span, not a qualified one."""
    pattern = code_span_starting_with("StreamState")
    assert pattern.search("the table's `StreamState.DONE` state")
    assert not pattern.search("the table's `_stream.StreamState.DONE` state")
    assert not pattern.search("`StreamStates`")
