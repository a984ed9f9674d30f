"""Tool arguments from a command line, typed by the tool's input schema.

``count=5`` against ``{"type": "integer"}`` is ``5``, not ``"5"``: a person
at a terminal should not have to write JSON for a number. Strings stay as
typed; booleans accept true/false/yes/no/1/0; arrays, objects and untyped
properties are read as JSON when they parse (an untyped ``x=abc`` stays a
string).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = ["UsageError", "build_arguments"]


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit status 2."""


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _typed(key: str, text: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()
    if "string" in kinds:
        return text
    if "boolean" in kinds and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    if kinds & {"integer", "number"}:
        try:
            return int(text)
        except ValueError:
            if "number" in kinds:
                try:
                    return float(text)
                except ValueError:
                    pass
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        if not kinds:
            return text  # untyped: what was typed
    raise UsageError(f"{key}: expected {' or '.join(sorted(kinds))}, got {text!r}")


def build_arguments(
    pairs: Sequence[str], json_args: str | None, input_schema: Mapping[str, Any]
) -> dict[str, Any]:
    """The call's arguments from ``--args`` and ``key=value`` pairs, typed by the schema.

    Raises:
        UsageError: a pair without ``=``, ``--args`` not a JSON object, or a
            value the schema's type cannot take.
    """
    arguments: dict[str, Any] = {}
    if json_args is not None:
        try:
            arguments = orjson.loads(json_args)
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"--args is not JSON: {exc}") from None
        if not isinstance(arguments, dict):
            raise UsageError("--args must be a JSON object")
    properties = input_schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value, got {pair!r}")
        schema = properties.get(key)
        arguments[key] = _typed(key, text, schema if isinstance(schema, Mapping) else {})
    return arguments
