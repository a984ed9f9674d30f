"""Form-mode elicitation's schema: the restricted JSON Schema clients can render.

"Form mode elicitation schemas are limited to flat objects with primitive
properties only" (2025-11-25 client/elicitation, "Requested Schema"): string
(with a few formats), number, integer, boolean, single-select enums (``enum``,
or ``oneOf`` of ``{const, title}``; the legacy ``enumNames`` too) and
multi-select enums (an array whose items are such an enum, SEP-1330), each
with an optional ``default`` (SEP-1034). A tool asking for anything else is
our misuse, refused before the request goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import jsonschema.exceptions
from jsonschema import Draft202012Validator

from ._errors import LocalProtocolError
from ._schema import FORMATS

__all__ = ["check_form_schema"]

_STRING_KEYS = {"type", "title", "description", "minLength", "maxLength", "pattern", "format"}
_STRING_FORMATS = {"email", "uri", "date", "date-time"}
_CHOICE_KEYS = {"enum", "enumNames", "oneOf"}
_NUMBER_KEYS = {"type", "title", "description", "minimum", "maximum"}
_ARRAY_KEYS = {"type", "title", "description", "minItems", "maxItems", "items"}


def _titled(options: Any) -> bool:
    return (
        isinstance(options, list)
        and bool(options)
        and all(
            isinstance(o, Mapping) and isinstance(o.get("const"), str) and "title" in o
            for o in options
        )
    )


def _property_problem(prop: Any) -> str | None:
    """Why ``prop`` is outside the flat, primitive subset form mode allows."""
    if not isinstance(prop, Mapping):
        return "is not a schema object"
    kind = prop.get("type")
    extra = set(prop) - {"default"}
    if kind == "string":
        fmt = prop.get("format", "email")
        if not isinstance(fmt, str) or fmt not in _STRING_FORMATS:
            return f"has format {prop['format']!r} (allowed: {', '.join(sorted(_STRING_FORMATS))})"
        if "oneOf" in prop and not _titled(prop["oneOf"]):
            return "has a oneOf that is not a list of {const, title}"
        enum = prop.get("enum")
        if enum is not None and not (
            isinstance(enum, list) and enum and all(isinstance(e, str) for e in enum)
        ):
            return "has an enum that is not a list of strings"
        unknown = extra - _STRING_KEYS - _CHOICE_KEYS
    elif kind in ("number", "integer", "boolean"):
        unknown = extra - _NUMBER_KEYS
    elif kind == "array":  # multi-select enums only (SEP-1330)
        items = prop.get("items")
        untitled = isinstance(items, Mapping) and items.get("type") == "string" and "enum" in items
        if not (untitled or (isinstance(items, Mapping) and _titled(items.get("anyOf")))):
            return "is an array whose items are not an enum (multi-select)"
        unknown = extra - _ARRAY_KEYS
    else:
        return f"has type {kind!r}: form mode takes string, number, integer, boolean or enum"
    if unknown:
        return f"uses {', '.join(sorted(unknown))}, outside form mode's schema subset"
    return None


def check_form_schema(schema: Any) -> None:
    """Raise LocalProtocolError unless ``schema`` is inside form mode's subset.

    Defaults must match their property, and the whole must be a valid schema.
    """
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise LocalProtocolError('an elicitation schema must have "type": "object"')
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise LocalProtocolError('an elicitation schema\'s "properties" must be an object')
    for name, prop in properties.items():
        problem = _property_problem(prop)
        if problem is not None:
            raise LocalProtocolError(f"elicitation property {name!r} {problem}")
        if "default" in prop:
            error = jsonschema.exceptions.best_match(
                Draft202012Validator(prop, format_checker=FORMATS).iter_errors(prop["default"])
            )
            if error is not None:
                raise LocalProtocolError(
                    f"the default of elicitation property {name!r} is invalid: {error.message}"
                )
    try:
        Draft202012Validator.check_schema(dict(schema))
    except jsonschema.exceptions.SchemaError as exc:
        raise LocalProtocolError(f"invalid elicitation schema: {exc.message}") from exc
