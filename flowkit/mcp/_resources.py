"""Resource declarations: static resources, URI templates, and what a read returns.

Like tools, resources are pure data here plus an opaque function the adapter
runs: the core lists them, matches a ``resources/read`` URI to a resource or
to a template (extracting its variables), and turns what the function
returned into ``ReadResourceResult.contents``. Running the function is the
adapter's business (:class:`~flowkit.mcp.Invoke`), so the core stays
synchronous.

A template's URI follows RFC 6570 at levels 1 and 2, the forms resource
templates use in practice: ``{name}`` matches one path segment (no ``/``,
``?`` or ``#``), ``{+name}`` (reserved expansion) matches anything,
slashes included. Values are percent-decoded before the function gets them.
"""

from __future__ import annotations

import inspect
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypedDict, TypeVar, Unpack

import attrs
import orjson

from ._completion import Completer, CompleterSpec, as_completers
from ._content import json_value, resource_contents
from ._errors import LocalProtocolError
from ._schema import context_parameter
from ._tools import add_listener

__all__ = ["Resource", "ResourceSet", "ResourceTemplate", "read_contents"]

_F = TypeVar("_F", bound=Callable[..., Any])
_VARIABLE = re.compile(r"\{(\+?)([A-Za-z0-9_]+)\}")
_SEGMENT = r"[^/?#]+"


def _described(out: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``out`` plus the optional fields that are set (camelCase names given)."""
    for key, value in fields.items():
        if value is not None:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def _optional_ttl(_instance: Any, _attribute: Any, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise LocalProtocolError(f"ttl_ms must be an int >= 0 (milliseconds), not {value!r}")


def _parameters(fn: Callable[..., Any]) -> tuple[set[str], set[str]]:
    """``fn``'s parameter names passable by keyword, and those without a default.

    A parameter taking the :class:`~flowkit.mcp.ToolContext` is neither.
    """
    names: set[str] = set()
    required: set[str] = set()
    context = context_parameter(fn)  # a ToolContext: never a URI variable
    for param in inspect.signature(fn).parameters.values():
        if param.name == context:
            continue
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise LocalProtocolError(
                f"{fn.__qualname__}({param.name}): resource parameters are passed by name"
            )
        names.add(param.name)
        if param.default is param.empty:
            required.add(param.name)
    return names, required


@attrs.frozen
class Resource:
    """One static resource, as ``resources/list`` publishes it.

    Attributes:
        uri: the resource's URI (RFC 3986), unique in its set.
        name: its name (required by the spec); defaults to the function's.
        fn: called with no arguments to read it; returns ``str`` (text),
            ``bytes`` (blob), a ready ``{"contents": [...]}`` result, or
            another JSON value (sent as JSON text). Opaque to the core.
        title: optional display name.
        description: optional description, for the model.
        mime_type: ``mimeType`` of the listing and of the contents.
        size: optional size in bytes, for hosts estimating context use.
        annotations: optional ``audience``/``priority``/``lastModified`` hints.
        ttl_ms: ``ttlMs`` of its ``resources/read`` results (2026-07-28
            era), overriding ``EndpointConfig.cache_ttl_ms``; 0 for contents
            that change any moment.
    """

    uri: str = attrs.field()
    name: str
    fn: Callable[..., Any] = attrs.field(eq=False, repr=False)
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None
    annotations: Mapping[str, Any] | None = None
    ttl_ms: int | None = attrs.field(default=None, validator=_optional_ttl)

    @uri.validator
    def _check_uri(self, _attribute: Any, value: str) -> None:
        if not isinstance(value, str) or ":" not in value or _VARIABLE.search(value):
            raise LocalProtocolError(f"invalid resource URI {value!r}: give an absolute URI")

    @fn.validator
    def _check_fn(self, _attribute: Any, value: Callable[..., Any]) -> None:
        required = _parameters(value)[1]
        if required:
            raise LocalProtocolError(
                f"resource {self.uri!r} takes no arguments; {value.__qualname__} needs "
                f"{', '.join(sorted(required))} (use a URI template for variables)"
            )

    def to_json(self) -> dict[str, Any]:
        """The ``Resource`` object of ``resources/list``."""
        return _described(
            {"uri": self.uri, "name": self.name},
            title=self.title,
            description=self.description,
            mimeType=self.mime_type,
            size=self.size,
            annotations=self.annotations,
        )


@attrs.frozen
class ResourceTemplate:
    """A family of resources named by a URI template (``file:///{path}``).

    Attributes:
        uri_template: the RFC 6570 template (``{name}`` and ``{+name}``).
        name: its name; defaults to the function's.
        fn: called with the template's variables as keyword arguments
            (strings, percent-decoded); returns what :class:`Resource` allows.
            Raise ``LookupError`` (``KeyError``...) when the URI names
            nothing: the client gets the spec's "Resource not found".
        title, description, mime_type, annotations, ttl_ms: as for
            :class:`Resource`.
        completers: per variable, the values ``completion/complete`` offers.
        variables: the template's variable names, in order.
    """

    uri_template: str
    name: str
    fn: Callable[..., Any] = attrs.field(eq=False, repr=False)
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    annotations: Mapping[str, Any] | None = None
    ttl_ms: int | None = attrs.field(default=None, validator=_optional_ttl)
    completers: Mapping[str, Completer] = attrs.field(factory=dict, eq=False, repr=False)
    variables: tuple[str, ...] = attrs.field(init=False)
    _pattern: re.Pattern[str] = attrs.field(init=False, eq=False, repr=False)

    @variables.default
    def _make_variables(self) -> tuple[str, ...]:
        found = tuple(m.group(2) for m in _VARIABLE.finditer(self.uri_template))
        if not found or len(set(found)) != len(found):
            raise LocalProtocolError(
                f"resource template {self.uri_template!r} needs distinct {{variables}}"
            )
        names, required = _parameters(self.fn)
        if not required <= set(found) or not set(found) <= names:
            raise LocalProtocolError(
                f"resource template {self.uri_template!r}: {self.fn.__qualname__} must take "
                f"exactly its variables ({', '.join(found)}) as parameters"
            )
        unknown = set(self.completers) - set(found)
        if unknown:
            raise LocalProtocolError(
                f"resource template {self.uri_template!r} has no variable "
                f"{', '.join(sorted(unknown))} to complete"
            )
        return found

    @_pattern.default
    def _make_pattern(self) -> re.Pattern[str]:
        parts: list[str] = []
        position = 0
        for match in _VARIABLE.finditer(self.uri_template):
            parts.append(re.escape(self.uri_template[position : match.start()]))
            value = ".+" if match.group(1) else _SEGMENT
            parts.append(f"(?P<{match.group(2)}>{value})")
            position = match.end()
        parts.append(re.escape(self.uri_template[position:]))
        return re.compile("".join(parts))

    def match(self, uri: str) -> dict[str, str] | None:
        """The variables of ``uri`` if this template produces it, else ``None``."""
        found = self._pattern.fullmatch(uri)
        if found is None:
            return None
        return {name: urllib.parse.unquote(value) for name, value in found.groupdict().items()}

    def to_json(self) -> dict[str, Any]:
        """The ``ResourceTemplate`` object of ``resources/templates/list``."""
        return _described(
            {"uriTemplate": self.uri_template, "name": self.name},
            title=self.title,
            description=self.description,
            mimeType=self.mime_type,
            annotations=self.annotations,
        )


def read_contents(value: Any, uri: str, mime_type: str | None) -> dict[str, Any]:
    """The ``ReadResourceResult`` for what a reader returned.

    * ``str`` → one text item; ``bytes`` → one base64 ``blob`` item; both
      carry the declared ``mimeType``;
    * a mapping with a ``contents`` list → taken as the ready result (build
      its items with :func:`~flowkit.mcp.resource_contents`);
    * another JSON value → its JSON as text (``application/json`` unless
      declared otherwise).

    Raises:
        TypeError: the value is none of these.
    """
    if isinstance(value, str):
        return {"contents": [resource_contents(uri, text=value, mime_type=mime_type)]}
    if isinstance(value, bytes | bytearray | memoryview):
        item = resource_contents(uri, blob=bytes(value), mime_type=mime_type)
        return {"contents": [item]}
    if isinstance(value, Mapping) and isinstance(value.get("contents"), list):
        return dict(orjson.loads(json_value(value, "the resource's ReadResourceResult")))
    text = json_value(value, "the resource's contents").decode()
    return {
        "contents": [resource_contents(uri, text=text, mime_type=mime_type or "application/json")]
    }


class ResourceOptions(TypedDict, total=False):
    """The keyword options of :meth:`ResourceSet.resource`."""

    name: str | None
    title: str | None
    description: str | None
    mime_type: str | None
    size: int | None
    annotations: Mapping[str, Any] | None
    ttl_ms: int | None
    complete: Mapping[str, CompleterSpec] | None


class ResourceSet:
    """The resources and templates one server offers, in registration order.

    It notifies its listeners when the list changes (:meth:`on_change`) and
    when a resource's contents change (:meth:`updated`, :meth:`on_update`),
    which the adapter turns into ``notifications/resources/list_changed``
    and ``notifications/resources/updated``.
    """

    def __init__(self) -> None:
        self._resources: dict[str, Resource] = {}
        self._templates: dict[str, ResourceTemplate] = {}
        self._on_change: list[Callable[[], None]] = []
        self._on_update: list[Callable[[str], None]] = []

    def add(self, item: Resource | ResourceTemplate) -> Resource | ResourceTemplate:
        """Register a resource or a template; a second one with its URI is an error."""
        if isinstance(item, Resource):
            if item.uri in self._resources:
                raise LocalProtocolError(f"duplicate resource URI {item.uri!r}")
            self._resources[item.uri] = item
        else:
            if item.uri_template in self._templates:
                raise LocalProtocolError(f"duplicate resource template {item.uri_template!r}")
            self._templates[item.uri_template] = item
        self._changed()
        return item

    def remove(self, uri: str) -> Resource | ResourceTemplate:
        """Unregister the resource (or template) with this URI (KeyError if none)."""
        item: Resource | ResourceTemplate
        item = self._resources.pop(uri) if uri in self._resources else self._templates.pop(uri)
        self._changed()
        return item

    def resource(self, uri: str, /, **options: Unpack[ResourceOptions]) -> Callable[[_F], _F]:
        """Decorator declaring a resource, or a template if ``uri`` has ``{variables}``.

        The name defaults to the function's name and the description to its
        docstring. ``ttl_ms`` overrides the configured ``ttlMs`` of its
        reads (2026-07-28 era). ``complete`` (templates only) maps a variable to the
        values ``completion/complete`` offers for it: a list (filtered by
        prefix) or a function ``(value, context) -> values``.
        """

        def register(fn: _F) -> _F:
            name = options.get("name") or fn.__name__
            description = options.get("description") or inspect.getdoc(fn)
            common: dict[str, Any] = {
                "name": name,
                "fn": fn,
                "title": options.get("title"),
                "description": description,
                "mime_type": options.get("mime_type"),
                "annotations": options.get("annotations"),
                "ttl_ms": options.get("ttl_ms"),
            }
            if _VARIABLE.search(uri):
                if options.get("size") is not None:
                    raise LocalProtocolError(f"resource template {uri!r}: size is per resource")
                completers = as_completers(options.get("complete"))
                self.add(ResourceTemplate(uri, completers=completers, **common))
            else:
                if options.get("complete"):
                    raise LocalProtocolError(f"resource {uri!r} has no variables to complete")
                self.add(Resource(uri, size=options.get("size"), **common))
            return fn

        return register

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every :meth:`add` and :meth:`remove`.

        Returns:
            A function that stops the calls (see :meth:`ToolSet.on_change`).
        """
        return add_listener(self._on_change, listener)

    def on_update(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(uri)`` on every :meth:`updated`; returns what stops it."""
        return add_listener(self._on_update, listener)

    def updated(self, uri: str) -> None:
        """Report that the contents behind ``uri`` changed (subscribers get told)."""
        for listener in list(self._on_update):
            listener(uri)

    def _changed(self) -> None:
        for listener in list(self._on_change):
            listener()

    @property
    def resources(self) -> Sequence[Resource]:
        """The static resources, in registration order."""
        return tuple(self._resources.values())

    @property
    def templates(self) -> Sequence[ResourceTemplate]:
        """The templates, in registration order."""
        return tuple(self._templates.values())

    def template(self, uri_template: str) -> ResourceTemplate | None:
        """The template declared with exactly this URI template, or ``None``."""
        return self._templates.get(uri_template)

    def find(self, uri: str) -> tuple[Resource | ResourceTemplate, dict[str, str]] | None:
        """What answers a read of ``uri``: a resource, else the first matching template.

        Returns:
            The resource or template and the arguments to call it with, or
            ``None`` if nothing matches.
        """
        resource = self._resources.get(uri)
        if resource is not None:
            return resource, {}
        for template in self._templates.values():
            variables = template.match(uri)
            if variables is not None:
                return template, variables
        return None

    def __iter__(self) -> Iterator[Resource | ResourceTemplate]:
        yield from self._resources.values()
        yield from self._templates.values()

    def __len__(self) -> int:
        return len(self._resources) + len(self._templates)
