"""Every reference in docs/ and flowkit/ resolves inside the repository.

A reader of a docs page or a docstring must be able to follow what it points
to from a clone: relative links, paths such as ``docs/operators.md``,
``python -m`` commands, and named documents. Design notes kept outside the
repository (the DESIGN page) are not something a reader can open.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXTS = sorted([*(ROOT / "docs").rglob("*.md"), *(ROOT / "flowkit").rglob("*.py")])

LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w/.-])((?:docs|tests|benchmarks|flowkit|adapters)/[\w./-]*(?:\.\w+|/))")
#: Paths inside the MCP specification's own repository, by which docs/mcp.md cites it.
SPEC = "docs/specification/"
MODULE = re.compile(r"python -m ([A-Za-z_][\w.]*)")
DOCUMENT = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")
#: Names of documents that live outside the repository.
OUTSIDE = re.compile(r"\bDESIGN\b|\bCHECKLIST\b")


def _where(path: Path, text: str, index: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, index) + 1}"


def _broken(path: Path) -> list[str]:
    text = path.read_text()
    broken = []
    for match in LINK.finditer(text) if path.suffix == ".md" else ():
        target = match.group(1).split("#")[0]
        if target and "://" not in target and not (path.parent / target).exists():
            broken.append(f"{_where(path, text, match.start())}: link to {target}")
    for match in PATH.finditer(text):
        found = (ROOT / match.group(1)).exists() or (path.parent / match.group(1)).exists()
        if not found and not match.group(1).startswith(SPEC):
            broken.append(f"{_where(path, text, match.start())}: path {match.group(1)}")
    for match in MODULE.finditer(text):
        parts = match.group(1).split(".")
        if not (ROOT / parts[0]).is_dir():
            continue  # a tool (pytest, pip), not a module of this repository
        base = ROOT.joinpath(*parts)
        if not (base.with_suffix(".py").exists() or (base / "__init__.py").exists()):
            broken.append(f"{_where(path, text, match.start())}: module {match.group(1)}")
    names = {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts}
    for match in DOCUMENT.finditer(text):
        if match.group(1) not in names:
            broken.append(f"{_where(path, text, match.start())}: document {match.group(1)}")
    for match in OUTSIDE.finditer(text):
        broken.append(f"{_where(path, text, match.start())}: {match.group(0)} is not in the repo")
    return broken


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_reference_resolves_inside_the_repository(path: Path) -> None:
    assert _broken(path) == []
