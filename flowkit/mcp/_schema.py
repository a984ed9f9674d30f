"""Derive a tool's input JSON Schema from a function's signature.

Writing a JSON Schema by hand next to a typed function repeats the signature
and drifts from it. The subset of Python types that maps unambiguously onto
JSON is small, so we derive it: anything outside the subset is an error that
asks for an explicit schema rather than a guess.

=====================================  ==========================================
Python annotation                      JSON Schema
=====================================  ==========================================
``int`` / ``float`` / ``str`` / ``bool``   ``integer`` / ``number`` / ``string`` / ``boolean``
``list[X]`` / ``Sequence[X]``          ``{"type": "array", "items": X}``
``dict`` / ``dict[str, X]``            ``{"type": "object"[, "additionalProperties": X]}``
``X | None`` / ``Optional[X]``         ``{"anyOf": [X, {"type": "null"}]}``
``Literal["a", "b"]``                  ``{"enum": ["a", "b"]}`` (+ ``type`` if uniform)
``Annotated[X, "text"]``               X with ``"description": "text"``
``Any`` / no annotation                ``{}`` (anything)
=====================================  ==========================================

A parameter without a default is required; a default is published as
``default`` when it is JSON-serialisable. The object refuses unknown
properties (``additionalProperties: false``) so a misspelt argument is
reported to the model instead of silently ignored.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import orjson

from ._errors import LocalProtocolError

__all__ = ["schema_from_function"]

_SCALARS: dict[Any, str] = {int: "integer", float: "number", str: "string", bool: "boolean"}
_LISTS = (list, collections.abc.Sequence, collections.abc.Iterable, tuple, set, frozenset)
_DICTS = (dict, collections.abc.Mapping)


def _type_schema(hint: Any, where: str) -> dict[str, Any]:
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if hint is type(None):
        return {"type": "null"}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        schema = _type_schema(args[0], where)
        texts = [a for a in args[1:] if isinstance(a, str)]
        if texts:
            schema["description"] = " ".join(texts)
        return schema
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        inner = (
            _type_schema(members[0], where)
            if len(members) == 1
            else {"anyOf": [_type_schema(m, where) for m in members]}
        )
        if len(members) == len(args):
            return inner
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is typing.Literal:
        enum: dict[str, Any] = {"enum": list(args)}
        kinds = {_SCALARS.get(type(a)) for a in args}
        if len(kinds) == 1 and None not in kinds:
            enum["type"] = kinds.pop()
        return enum
    if hint in _LISTS or origin in _LISTS:
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            args = args[:1]
        elif origin is tuple and args:
            raise LocalProtocolError(
                f"{where}: fixed-length tuples are not supported; pass input_schema"
            )
        if args:
            return {"type": "array", "items": _type_schema(args[0], where)}
        return {"type": "array"}
    if hint in _DICTS or origin in _DICTS:
        if args:
            if args[0] is not str:
                raise LocalProtocolError(f"{where}: JSON object keys are strings")
            return {"type": "object", "additionalProperties": _type_schema(args[1], where)}
        return {"type": "object"}
    raise LocalProtocolError(
        f"{where}: cannot derive a JSON Schema for {hint!r}; pass input_schema explicitly"
    )


def schema_from_function(fn: Callable[..., Any]) -> dict[str, Any]:
    """Build an ``inputSchema`` object from ``fn``'s parameters and type hints.

    Raises:
        LocalProtocolError: a parameter is ``*args``/``**kwargs`` or positional
            only, or its annotation is outside the supported subset.
    """
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # unresolvable forward references
        raise LocalProtocolError(f"{name}: cannot resolve type hints: {exc}") from exc
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise LocalProtocolError(
                f"{name}: parameter {param.name!r} cannot be passed by name from JSON"
            )
        schema = _type_schema(hints.get(param.name, Any), f"{name}({param.name})")
        if param.default is param.empty:
            required.append(param.name)
        else:
            try:
                orjson.dumps(param.default)
            except TypeError:
                pass
            else:
                schema["default"] = param.default
        properties[param.name] = schema
    result: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        result["required"] = required
    return result
