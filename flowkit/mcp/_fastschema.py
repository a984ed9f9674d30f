"""A certain-valid shortcut for the JSON Schemas most tools declare.

jsonschema validates a small ``tools/call`` argument object in 50-150 µs: it walks
the schema through its keyword functions, its type checker and an error iterator.
Most tools declare a flat object of typed properties (``{"type": "object",
"properties": {"count": {"type": "integer"}}, "required": ["count"]}``), which a few
``type(value) is int`` checks decide. :func:`shortcut` compiles such a schema to a
predicate that answers ``True`` only when the instance is *certainly* valid;
``False`` means "not decided here" and the caller runs jsonschema, which stays the
single authority on what is invalid and how the error reads. So the shortcut can
only skip work, never change a verdict: it covers a subset of keywords and answers
``False`` for anything at its edge (``1.0`` for an integer, a subclass of ``str``).

Schemas outside the subset (a ``$schema``, ``format``, ``enum``, nested objects,
type lists, ...) get no shortcut.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# What a property's "type" admits, by exact Python type (JSON decoding makes only
# these; ``bool`` is not an integer in JSON Schema, ``type(True) is int`` is False).
_EXACT: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
}
# Keywords that only annotate: they never make an instance invalid.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated"})
_OBJECT_KEYS = frozenset({"type", "properties", "required", "additionalProperties"}) | _ANNOTATIONS
_PROPERTY_KEYS = frozenset({"type"}) | _ANNOTATIONS


def shortcut(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """A predicate that is ``True`` only for instances valid under ``schema``, or
    ``None`` when the schema is outside the subset this module decides."""
    if schema.get("type") != "object" or not set(schema) <= _OBJECT_KEYS:
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(properties, Mapping) or not isinstance(required, list):
        return None
    if extra is not True and extra is not False:
        return None
    types: dict[str, tuple[type, ...]] = {}
    for name, sub in properties.items():
        if not isinstance(sub, Mapping) or not set(sub) <= _PROPERTY_KEYS:
            return None
        kind = sub.get("type")
        if not isinstance(kind, str) or kind not in _EXACT:
            return None
        types[name] = _EXACT[kind]
    if not all(isinstance(name, str) for name in required):
        return None
    needed = tuple(required)
    closed = extra is False

    def certainly_valid(instance: Any) -> bool:
        if type(instance) is not dict:
            return False
        for name in needed:
            if name not in instance:
                return False
        for name, value in instance.items():
            allowed = types.get(name)
            if allowed is None:
                if closed:
                    return False
            elif type(value) not in allowed:
                return False
        return True

    return certainly_valid
