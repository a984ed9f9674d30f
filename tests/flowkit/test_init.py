"""flowkit's lazy ``__init__``: every public name works, and nothing loads before it is used."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import flowkit


def run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


def test_import_flowkit_loads_no_trio_and_no_operator() -> None:
    out = run_fresh("import json, sys, flowkit\nprint(json.dumps(sorted(sys.modules)))")
    loaded = set(orjson.loads(out))
    assert {"flowkit", "flowkit._exceptions"} <= loaded  # the probe saw the import
    lazy = {f"flowkit{module}" for module in flowkit._LAZY.values()}
    assert loaded & (lazy | {"trio", "flowkit.mcp", "flowkit.testing"}) == set()


def test_every_lazy_name_is_its_defining_modules_object() -> None:
    assert sorted(flowkit.__all__) == sorted(set(flowkit.__all__))
    assert set(flowkit._LAZY) <= set(flowkit.__all__)
    for name, module in flowkit._LAZY.items():
        defined = getattr(importlib.import_module(module, "flowkit"), name)
        assert getattr(flowkit, name) is defined, name
        assert vars(flowkit)[name] is defined, name  # bound: later lookups skip __getattr__


def test_star_import_binds_every_public_name_in_a_fresh_interpreter() -> None:
    out = run_fresh(
        "from flowkit import *\n"
        "import flowkit\n"
        "print(sorted(n for n in flowkit.__all__ if globals().get(n) is not getattr(flowkit, n)))"
    )
    assert out.strip() == "[]"


def test_documented_names_work_after_a_plain_import() -> None:
    """``flowkit.testing.check_operator`` (docs/operators.md) needs no ``import flowkit.testing``."""
    out = run_fresh(
        "import flowkit\n"
        "print(flowkit.testing.check_operator.__name__, flowkit.mcp.Endpoint.__name__,"
        " flowkit.map.__name__, flowkit.open_pipeline.__name__)"
    )
    assert out.split() == ["check_operator", "Endpoint", "map", "open_pipeline"]


def test_dir_lists_public_names_before_they_are_loaded() -> None:
    out = run_fresh("import flowkit\nprint(sorted(set(flowkit.__all__) - set(dir(flowkit))))")
    assert out.strip() == "[]"
    assert {"mcp", "testing"} <= set(dir(flowkit))


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="module 'flowkit' has no attribute 'mapp'"):
        flowkit.mapp  # type: ignore[attr-defined]  # noqa: B018
    assert not hasattr(flowkit, "_nothing_here")


def test_type_checking_imports_and_lazy_table_agree_with_all() -> None:
    """The three lists a new public name needs are kept in step (mypy reads only the imports)."""
    tree = ast.parse(Path(flowkit.__file__).read_text(encoding="utf-8"))
    type_checking = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    for node in type_checking.body:
        assert isinstance(node, ast.ImportFrom)
    imported = {
        alias.asname or alias.name: f".{node.module}" if node.module else "."
        for node in type_checking.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    subpackages = {name for name, module in imported.items() if module == "."}
    assert subpackages == flowkit._SUBPACKAGES
    lazy = {name: module for name, module in imported.items() if module != "."}
    assert lazy == flowkit._LAZY
    eager = set(flowkit.__all__) - set(lazy)
    assert all(name in vars(flowkit) for name in eager)
