"""Derive a tool's input JSON Schema from a function's signature, and convert its arguments.

Writing a JSON Schema by hand next to a typed function repeats the signature
and drifts from it. So we derive it, and the same walk over the type hints
builds the conversion of the validated JSON arguments into the annotated
types, so the tool gets what its signature says: a ``datetime``, an ``Enum``
member, a dataclass instance, a ``set``. Anything outside the supported
subset is a ``TypeError`` naming the parameter, asking for an explicit schema
rather than a guess.

=========================================  ====================================================
Python annotation                          JSON Schema (→ what the tool receives)
=========================================  ====================================================
``int`` / ``float`` / ``str`` / ``bool``   ``integer`` / ``number`` / ``string`` / ``boolean``
``list[X]`` / ``Sequence[X]``              ``{"type": "array", "items": X}`` (→ ``list``)
``tuple[X, ...]``                          the same (→ ``tuple``)
``set[X]`` / ``frozenset[X]``              the same plus ``uniqueItems`` (→ ``set``/``frozenset``)
``dict`` / ``dict[str, X]``                ``{"type": "object"[, "additionalProperties": X]}``
``X | None`` / ``Optional[X]``             ``{"anyOf": [X, {"type": "null"}]}``
``Literal["a", "b"]``                      ``{"enum": ["a", "b"]}`` (+ ``type`` if uniform)
an ``Enum`` subclass                       ``{"enum": [its values]}`` (→ the member)
``datetime`` / ``date``                    ``string`` with ``format`` ``date-time`` / ``date``
a dataclass                                an object of its fields (→ an instance)
a pydantic model (if pydantic is used)     the model's JSON Schema (→ ``model_validate``)
``Annotated[X, "text"]``                   X with ``"description": "text"``
``Any`` / no annotation                    ``{}`` (anything)
=========================================  ====================================================

A parameter without a default is required; a default is published as
``default`` when it is JSON-serialisable. The object refuses unknown
properties (``additionalProperties: false``) so a misspelt argument is
reported to the model instead of silently ignored. ``date-time`` and
``date`` are checked (:data:`FORMATS`), not just annotated: jsonschema only
checks formats it is given a checker for. An ``int`` parameter gets an int:
JSON Schema counts ``5.0`` as an integer, so an integral float is converted.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import enum
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
import orjson

__all__ = [
    "FORMATS",
    "context_parameter",
    "derive_signature",
    "parse_datetime",
    "schema_from_function",
]

Convert = Callable[[Any], Any]
"""Turns a validated JSON value into the annotated type."""

_SCALARS: dict[Any, str] = {int: "integer", float: "number", str: "string", bool: "boolean"}
_LISTS = (list, collections.abc.Sequence, collections.abc.Iterable)
_SETS: dict[Any, type] = {set: set, frozenset: frozenset, collections.abc.Set: frozenset}
_DICTS = (dict, collections.abc.Mapping)
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_datetime(text: str) -> datetime.datetime:
    """An RFC 3339 ``date-time`` (offset required), as an aware ``datetime``.

    Raises:
        ValueError: not of that form, or not a real date or time.
    """
    if _DATE_TIME.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time")
    return datetime.datetime.fromisoformat(text.upper())


def _parse_date(text: str) -> datetime.date:
    if _DATE.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not an RFC 3339 full-date")
    return datetime.date.fromisoformat(text)


FORMATS = jsonschema.FormatChecker(formats=())
"""The formats input and output schemas are checked for: ``date-time``, ``date``.

Exactly these, whatever optional packages are installed, so validation does
not change with the environment; other formats stay annotations.
"""


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if isinstance(value, str):  # a format applies to strings only
        parse_datetime(value)
    return True


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if isinstance(value, str):
        _parse_date(value)
    return True


def _json_default(value: Any) -> tuple[bool, Any]:
    try:
        return True, orjson.loads(orjson.dumps(value))
    except TypeError:
        return False, None


def _pydantic_model(hint: Any) -> bool:
    # Never imports pydantic: a model class exists only if its module did.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(hint, type) and issubclass(hint, pydantic.BaseModel)


def _maybe(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


def _integral(value: Any) -> Any:
    """An integral float (which JSON Schema counts as an ``integer``) as the int.

    ``{"count": 5.0}`` passes ``{"type": "integer"}``; a tool annotated
    ``count: int`` must still get ``5``, not a float that ``range()`` refuses.
    """
    return int(value) if type(value) is float else value


class _Deriver:
    """One walk over a signature's hints: schemas, converters, shared ``$defs``."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self._open: set[type] = set()  # dataclasses being derived (recursion guard)

    def derive(self, hint: Any, where: str) -> tuple[dict[str, Any], Convert | None]:
        if hint is Any or hint is inspect.Parameter.empty:
            return {}, None
        if hint is int:
            return {"type": "integer"}, _integral
        if hint in _SCALARS:
            return {"type": _SCALARS[hint]}, None
        if hint is type(None):
            return {"type": "null"}, None
        if hint is datetime.datetime:
            return {"type": "string", "format": "date-time"}, parse_datetime
        if hint is datetime.date:
            return {"type": "string", "format": "date"}, _parse_date
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is typing.Annotated:
            schema, convert = self.derive(args[0], where)
            texts = [a for a in args[1:] if isinstance(a, str)]
            if texts:
                schema["description"] = " ".join(texts)
            return schema, convert
        if origin is typing.Union or origin is types.UnionType:
            return self._union(args, where)
        if origin is typing.Literal:
            return _enum_schema(list(args)), None
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            values = [member.value for member in hint]
            if not all(type(v) in _SCALARS for v in values):
                raise TypeError(f"{where}: the values of {hint.__name__} are not JSON scalars")
            return _enum_schema(values), hint
        if hint in _SETS or origin in _SETS:
            return self._set(hint, origin, args, where)
        if hint is tuple or origin is tuple:
            if args and not (len(args) == 2 and args[1] is Ellipsis):
                raise TypeError(
                    f"{where}: fixed-length tuples are not supported; pass input_schema"
                )
            schema, convert = self._array(args[:1], where)
            return schema, (tuple if convert is None else lambda v: tuple(map(convert, v)))
        if hint in _LISTS or origin in _LISTS:
            schema, convert = self._array(args, where)
            return schema, (None if convert is None else lambda v: [convert(x) for x in v])
        if hint in _DICTS or origin in _DICTS:
            return self._dict(args, where)
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            return self._dataclass(hint, where)
        if _pydantic_model(hint):
            return self._pydantic(hint, where)
        hint_name = getattr(hint, "__name__", repr(hint))
        advice = "; take a base64 str instead" if hint in (bytes, bytearray) else ""
        raise TypeError(
            f"{where}: cannot derive a JSON Schema for {hint_name}{advice}; pass input_schema "
            "explicitly"
        )

    def _union(self, args: tuple[Any, ...], where: str) -> tuple[dict[str, Any], Convert | None]:
        members = [a for a in args if a is not type(None)]
        derived = [self.derive(m, where) for m in members]
        converts = [c for _, c in derived if c is not None and c is not _integral]
        if converts and len(members) > 1:
            raise TypeError(
                f"{where}: a union of several types is only supported for JSON types; "
                "pass input_schema"
            )
        if not converts and float not in members and any(c is _integral for _, c in derived):
            converts = [_integral]  # 5.0 in ``int | str`` only matched the integer
        inner = derived[0][0] if len(members) == 1 else {"anyOf": [s for s, _ in derived]}
        convert = converts[0] if converts else None
        if len(members) == len(args):
            return inner, convert
        return {"anyOf": [inner, {"type": "null"}]}, None if convert is None else _maybe(convert)

    def _array(self, args: tuple[Any, ...], where: str) -> tuple[dict[str, Any], Convert | None]:
        if not args:
            return {"type": "array"}, None
        items, convert = self.derive(args[0], where)
        return {"type": "array", "items": items}, convert

    def _set(
        self, hint: Any, origin: Any, args: tuple[Any, ...], where: str
    ) -> tuple[dict[str, Any], Convert]:
        kind = _SETS[origin if origin is not None else hint]
        element = typing.get_origin(args[0]) if args else None
        hashable = (
            not args
            or args[0] in _SCALARS
            or args[0] in (datetime.datetime, datetime.date)
            or element is typing.Literal
            or (isinstance(args[0], type) and issubclass(args[0], enum.Enum))
        )
        if not hashable:
            raise TypeError(f"{where}: a set holds scalars, enums, literals or dates only")
        schema, convert = self._array(args, where)
        schema["uniqueItems"] = True
        return schema, (kind if convert is None else lambda v: kind(map(convert, v)))

    def _dict(self, args: tuple[Any, ...], where: str) -> tuple[dict[str, Any], Convert | None]:
        if not args:
            return {"type": "object"}, None
        if args[0] is not str:
            raise TypeError(f"{where}: JSON object keys are strings")
        values, convert = self.derive(args[1], where)
        schema = {"type": "object", "additionalProperties": values}
        return schema, (
            None if convert is None else lambda v: {k: convert(x) for k, x in v.items()}
        )

    def _dataclass(self, cls: type, where: str) -> tuple[dict[str, Any], Convert]:
        if cls in self._open:
            raise TypeError(f"{where}: {cls.__name__} is recursive; pass input_schema")
        self._open.add(cls)
        try:
            hints = _hints(cls, where)
            fields = [f for f in dataclasses.fields(cls) if f.init]
            properties = {}
            required = []
            converts: dict[str, Convert] = {}
            for field in fields:
                schema, convert = self.derive(hints.get(field.name, Any), f"{where}.{field.name}")
                if field.default is not dataclasses.MISSING:
                    ok, default = _json_default(field.default)
                    if ok:
                        schema["default"] = default
                elif field.default_factory is dataclasses.MISSING:
                    required.append(field.name)
                properties[field.name] = schema
                if convert is not None:
                    converts[field.name] = convert
        finally:
            self._open.discard(cls)
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required

        def build(value: Mapping[str, Any]) -> Any:
            return cls(**{k: (converts[k](v) if k in converts else v) for k, v in value.items()})

        return schema, build

    def _pydantic(self, model: Any, where: str) -> tuple[dict[str, Any], Convert]:
        schema = dict(model.model_json_schema())
        for name, definition in schema.pop("$defs", {}).items():
            if self.defs.setdefault(name, definition) != definition:
                raise TypeError(f"{where}: two different models are both called {name!r}")
        return schema, model.model_validate


def _hints(obj: Any, where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception as exc:  # unresolvable forward references
        raise TypeError(f"{where}: cannot resolve type hints: {exc}") from exc


def _reason(exc: Exception) -> str:
    """One line saying why a type refused a value (pydantic's errors, condensed)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # a pydantic ValidationError: one "where: why" per error
        try:
            return "; ".join(
                f"{'/'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
                for e in errors()
            )
        except (TypeError, KeyError):
            pass
    return str(exc)


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"enum": values}
    kinds = {_SCALARS.get(type(v)) for v in values}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    return schema


def context_parameter(fn: Callable[..., Any]) -> str | None:
    """The name of ``fn``'s parameter annotated with :class:`~flowkit.mcp.ToolContext`, if any.

    It is the tool's context, never an argument: the schema leaves it out and
    the adapter passes the call's context there. Recognised by the class's
    ``__flowkit_context__`` marker (that module imports this one).

    Raises:
        TypeError: more than one parameter is.
    """
    try:
        hints = typing.get_type_hints(fn)
        parameters = inspect.signature(fn).parameters
    except Exception:  # unresolvable hints: derive_signature reports them
        return None
    names = [n for n in parameters if getattr(hints.get(n), "__flowkit_context__", False)]
    if len(names) > 1:
        raise TypeError(f"{fn.__qualname__}: only one parameter may take the ToolContext")
    return names[0] if names else None


def derive_signature(
    fn: Callable[..., Any],
) -> tuple[dict[str, Any], Callable[[Mapping[str, Any]], dict[str, Any]] | None]:
    """``fn``'s input schema, and the conversion of valid arguments to its types.

    The conversion is ``None`` when every parameter takes its JSON value as is;
    it raises ``ValueError("at 'param': why")`` when a type refuses a value.

    Raises:
        TypeError: naming the parameter: it is ``*args``/``**kwargs`` or
            positional only, or its annotation is outside the supported subset.
    """
    name = getattr(fn, "__qualname__", repr(fn))
    hints = _hints(fn, name)
    context = context_parameter(fn)  # the tool's ToolContext: never an argument
    deriver = _Deriver()
    properties: dict[str, Any] = {}
    required: list[str] = []
    converts: dict[str, Convert] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name == context:
            continue
        where = f"{name}({param.name})"
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise TypeError(f"{where}: the parameter cannot be passed by name from JSON")
        schema, convert = deriver.derive(hints.get(param.name, Any), where)
        if param.default is param.empty:
            required.append(param.name)
        else:
            ok, default = _json_default(param.default)
            if ok:
                schema["default"] = default
        properties[param.name] = schema
        if convert is not None:
            converts[param.name] = convert
    result: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        result["required"] = required
    if deriver.defs:
        result["$defs"] = deriver.defs
    if not converts:
        return result, None

    def convert_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
        converted = dict(arguments)
        for key, convert in converts.items():
            if key in converted:
                try:
                    converted[key] = convert(converted[key])
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"at '{key}': {_reason(exc)}") from exc
        return converted

    return result, convert_arguments


def schema_from_function(fn: Callable[..., Any]) -> dict[str, Any]:
    """Build an ``inputSchema`` object from ``fn``'s parameters and type hints.

    Raises:
        TypeError: naming the parameter: it is ``*args``/``**kwargs`` or
            positional only, or its annotation is outside the supported subset.
    """
    return derive_signature(fn)[0]
