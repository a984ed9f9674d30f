"""flowkit.mcp is sans-IO in fact: a fresh ``import flowkit.mcp`` loads no I/O and no operator.

Checked in a fresh interpreter through ``sys.modules``, so an import hidden
anywhere (another package's ``__init__``, a transitive dependency) counts,
not just the import lines of the core's own files.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
