"""Every refusal comes from one table and a named constructor in ``_errors``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import flowkit.mcp
from flowkit.mcp import (
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    RemoteProtocolError,
    _errors,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "mcp.md"
# Sample arguments by parameter name, enough to call every constructor.
SAMPLES: dict[str, Any] = {
    "message": "m",
    "request_id": 7,
    "version": "1999-01-01",
    "supported": ["2025-11-25"],
    "method": "PUT",
    "allow": ["POST"],
    "why": "",
    "what": "Host",
    "www_authenticate": "Bearer",
    "needs": "text/event-stream",
    "limit": 10,
    "retry_after": 3,
    "tool": "t",
    "missing": {"sampling": {}},
    "http_status": 418,
    "name": "mcp-method",
    "mirrored": True,
    "size": 11,
    "uri": "test://nothing",
    "code": -32002,
    "instance": "a",
}


def _constructors() -> list[Any]:
    return [
        fn
        for name, fn in vars(_errors).items()
        if inspect.isfunction(fn) and not name.startswith("_") and fn.__module__ == _errors.__name__
    ]


def test_every_constructor_answers_from_the_table() -> None:
    constructors = _constructors()
    assert len(constructors) >= 20
    allowed = set(_errors.REFUSALS.values())
    for fn in constructors:
        params = inspect.signature(fn).parameters
        error = fn(**{name: SAMPLES[name] for name in params})
        assert isinstance(error, RemoteProtocolError), fn
        if error.code in (METHOD_NOT_FOUND, MISSING_REQUIRED_CLIENT_CAPABILITY):
            assert error.http_status == 418  # the revision's status, passed in
        else:
            assert (error.http_status, error.code) in allowed, fn.__name__
        if "request_id" in params:
            assert error.request_id == 7


def test_the_docs_table_lists_every_row() -> None:
    rows = set(re.findall(r"^\| (\d{3}) \| (-\d+) \|", DOCS.read_text(), re.MULTILINE))
    for status, code in _errors.REFUSALS.values():
        assert (str(status), str(code)) in rows, (status, code)


def test_no_refusal_is_built_inline() -> None:
    package = Path(flowkit.mcp.__file__).parent
    inline = {
        path.name
        for path in package.glob("*.py")
        if "RemoteProtocolError(" in path.read_text() and path.name != "_errors.py"
    }
    assert inline == set()
