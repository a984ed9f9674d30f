"""flowkit.mcp is sans-IO: no event loop, web framework or socket imports."""

from __future__ import annotations

import ast
from pathlib import Path

import flowkit.mcp

FORBIDDEN = {"trio", "quart", "quart_trio", "hypercorn", "asyncio", "socket", "anyio", "selectors"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_io_imports_anywhere_in_the_package() -> None:
    package = Path(flowkit.mcp.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert files
    for path in files:
        for module in _imported_modules(path):
            top = module.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {module}"


def test_only_flowkit_import_is_the_exception_base() -> None:
    """The core depends on nothing of flowkit but FlowkitError (layers point down)."""
    package = Path(flowkit.mcp.__file__).parent
    for path in package.rglob("*.py"):
        for module in _imported_modules(path):
            if module.startswith("flowkit"):
                assert module == "flowkit._exceptions", f"{path.name} imports {module}"


def test_public_names_are_exported() -> None:
    for name in flowkit.mcp.__all__:
        assert hasattr(flowkit.mcp, name), name
    assert sorted(flowkit.mcp.__all__) == sorted(set(flowkit.mcp.__all__))
