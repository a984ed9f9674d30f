"""Tool declarations: pure data plus argument validation, no execution.

A :class:`Tool` is what ``tools/list`` publishes and what ``tools/call``
validates against. Running it is the adapter's business: the core only hands
the adapter the :class:`Tool`, its validated arguments and an
:class:`~flowkit.mcp.OutgoingStream` to report through. Keeping execution out
means the protocol core stays synchronous, deterministic and fuzzable.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypedDict, TypeVar, Unpack, overload

import attrs
import jsonschema
import jsonschema.exceptions
import jsonschema.validators
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from ._errors import LocalProtocolError
from ._fastschema import shortcut
from ._pages import paginate
from ._schema import FORMATS, context_parameter, derive_signature

__all__ = ["HeaderParam", "Policy", "Tool", "ToolSet", "header_params", "validate_tool_name"]

Policy = Literal["lossless", "conflate"]
"""How the adapter delivers a tool's intermediate output to a slow client.

``"lossless"``: the pipeline blocks while the client is slow (end-to-end
backpressure). ``"conflate"``: progress keeps only the latest value and logs
drop oldest, so the pipeline never waits on the client. The final response is
never dropped under either policy. The core treats this as opaque data.
"""

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

_MAX_ECHO = 200
"""Characters of an invalid value that a validation error quotes: a 1 MB
argument must not come back as a 1 MB error (the rest is elided)."""
_MAX_MESSAGE = 4 * _MAX_ECHO  # the whole message, whatever else it quotes


def _bounded(message: str, instance: Any) -> str:
    """``message`` with the quoted ``instance`` (and itself) cut to a bounded length."""
    if len(message) <= _MAX_MESSAGE:
        return message
    quoted = repr(instance)
    if len(quoted) > _MAX_ECHO:
        elided = f"{quoted[:_MAX_ECHO]}... ({len(quoted) - _MAX_ECHO} more characters)"
        message = message.replace(quoted, elided, 1)
    if len(message) > _MAX_MESSAGE:
        message = f"{message[:_MAX_MESSAGE]}... (message truncated)"
    return message


_F = TypeVar("_F", bound=Callable[..., Any])
_L = TypeVar("_L", bound=Callable[..., None])


def validate_tool_name(name: str) -> str:
    """Return ``name`` if it is a valid tool name, else raise LocalProtocolError.

    The spec ("Tool Names", 2025-11-25) recommends 1-128 characters of
    ``[A-Za-z0-9_.-]``; the conformance suite and several clients cap at 64,
    so we do too.
    """
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise LocalProtocolError(
            f"invalid tool name {name!r}: use 1-64 characters of A-Z a-z 0-9 _ . -"
        )
    return name


def _compile(schema: Mapping[str, Any], what: str) -> Validator:
    cls = jsonschema.validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(dict(schema))
    except jsonschema.exceptions.SchemaError as exc:
        raise LocalProtocolError(f"{what} is not a valid JSON Schema: {exc.message}") from exc
    return cls(schema, format_checker=FORMATS)


def _check_input_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise LocalProtocolError('input_schema must be a JSON Schema object with "type": "object"')
    return schema


_X_MCP_HEADER = "x-mcp-header"
# RFC 9110 5.1 field-name token: 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_TYPES = frozenset({"string", "integer", "boolean"})


@attrs.frozen
class HeaderParam:
    """An argument mirrored into an ``Mcp-Param-{name}`` header (2026-07-28).

    Declared by an ``x-mcp-header`` annotation on a property of the input
    schema ("Custom Headers from Tool Parameters", 2026-07-28 Streamable
    HTTP); the server checks the header against the argument.

    Attributes:
        name: the annotation's value, as declared (``Region``).
        header: the lowercase header name (``mcp-param-region``).
        path: the chain of ``properties`` keys leading to the argument.
        type: the property's JSON type: ``string``, ``integer`` or ``boolean``.
    """

    name: str
    header: str
    path: tuple[str, ...]
    type: str


def _count_annotations(node: Any) -> int:
    if isinstance(node, Mapping):
        own = 1 if _X_MCP_HEADER in node else 0
        return own + sum(_count_annotations(v) for v in node.values())
    if isinstance(node, list | tuple):
        return sum(_count_annotations(v) for v in node)
    return 0


def header_params(tool: str, schema: Mapping[str, Any]) -> tuple[HeaderParam, ...]:
    """The ``x-mcp-header`` annotations of an input schema, checked.

    :attr:`Tool.header_params` for a declared tool; a client calls it on the
    schema a ``tools/list`` gave it, to know which arguments it must mirror
    into ``Mcp-Param-*`` headers.

    Raises:
        LocalProtocolError: an annotation breaks a constraint of the spec
            ("Schema Extension"): empty or not an HTTP token, not unique
            (case-insensitively), on a type other than string/integer/boolean,
            or not reachable from the root through ``properties`` alone.
    """
    found: list[HeaderParam] = []

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        properties = node.get("properties")
        if not isinstance(properties, Mapping):
            return
        for key, child in properties.items():
            if not isinstance(child, Mapping):
                continue
            here = (*path, str(key))
            if _X_MCP_HEADER in child:
                name = child[_X_MCP_HEADER]
                where = f"x-mcp-header of {'.'.join(here)!r} in tool {tool!r}"
                if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
                    raise LocalProtocolError(f"{where} must be an HTTP token, not {name!r}")
                kind = child.get("type")
                if not isinstance(kind, str) or kind not in _HEADER_TYPES:
                    raise LocalProtocolError(
                        f"{where} needs a property of type string, integer or boolean"
                    )
                found.append(HeaderParam(name, "mcp-param-" + name.lower(), here, kind))
            walk(child, here)

    walk(schema, ())
    if len(found) != _count_annotations(schema):
        raise LocalProtocolError(
            f"tool {tool!r}: x-mcp-header is only allowed on properties reachable from the "
            "schema root through properties alone"
        )
    headers = [p.header for p in found]
    if len(set(headers)) != len(headers):
        raise LocalProtocolError(f"tool {tool!r}: x-mcp-header values must be unique")
    return tuple(found)


@attrs.frozen
class Tool:
    """One tool as MCP clients see it, plus opaque data for the adapter.

    Attributes:
        name: unique name, 1-64 characters of ``[A-Za-z0-9_.-]``.
        description: what the tool does, for the model.
        input_schema: JSON Schema of the arguments (``type: "object"``).
        fn: the callable the adapter runs with the validated arguments as
            keyword arguments; opaque to the core.
        output_schema: optional JSON Schema that ``structuredContent`` must
            match; checked by :meth:`OutgoingStream.result`.
        title: optional display name.
        annotations: optional ``ToolAnnotations`` hints (``readOnlyHint``...),
            published as is.
        policy: delivery policy for intermediate output (see :data:`Policy`).
        requires: client capabilities the tool cannot work without (e.g.
            ``{"sampling": {}}``); a call from a client that did not declare
            each of them is refused with -32021 (2026-07-28 "Client
            Capabilities": a server MUST NOT rely on undeclared ones).
        converter: turns validated arguments into the values ``fn`` takes
            (a ``datetime``, an ``Enum`` member, a dataclass...);
            :meth:`from_function` derives it from the type hints. ``None``:
            ``fn`` takes the JSON values as they are.
        thread: run the (plain, synchronous) function in a worker thread
            (``trio.to_thread.run_sync``) so that blocking I/O in it does
            not stall the event loop; opaque to the core, like ``fn``.
        header_params: the arguments mirrored into ``Mcp-Param-*`` headers,
            from the input schema's ``x-mcp-header`` annotations.
        context_param: the name of ``fn``'s parameter annotated with
            :class:`~flowkit.mcp.ToolContext` (the adapter passes the call's
            context there; it is never an argument), or ``None``.
    """

    name: str = attrs.field(validator=lambda _i, _a, v: validate_tool_name(v))
    description: str
    input_schema: Mapping[str, Any] = attrs.field(converter=_check_input_schema)
    fn: Callable[..., Any] = attrs.field(eq=False, repr=False)
    output_schema: Mapping[str, Any] | None = None
    title: str | None = None
    annotations: Mapping[str, Any] | None = None
    policy: Policy = attrs.field(default="lossless")
    requires: Mapping[str, Any] | None = None
    converter: Callable[[Mapping[str, Any]], dict[str, Any]] | None = attrs.field(
        default=None, eq=False, repr=False
    )
    thread: bool = attrs.field(default=False)
    header_params: tuple[HeaderParam, ...] = attrs.field(init=False, eq=False, repr=False)
    context_param: str | None = attrs.field(init=False, eq=False, repr=False)
    _input_validator: Validator = attrs.field(init=False, eq=False, repr=False)
    _output_validator: Validator | None = attrs.field(init=False, eq=False, repr=False)
    # Certain-valid shortcuts (``_fastschema``): jsonschema runs when they say no.
    _input_shortcut: Callable[[Any], bool] | None = attrs.field(init=False, eq=False, repr=False)
    _output_shortcut: Callable[[Any], bool] | None = attrs.field(init=False, eq=False, repr=False)

    @policy.validator
    def _check_policy(self, _attribute: Any, value: str) -> None:
        if value not in ("lossless", "conflate"):
            raise LocalProtocolError(f'policy must be "lossless" or "conflate", not {value!r}')

    @thread.validator
    def _check_thread(self, _attribute: Any, value: bool) -> None:
        if value and (inspect.iscoroutinefunction(self.fn) or inspect.isasyncgenfunction(self.fn)):
            raise LocalProtocolError(
                f"tool {self.name!r}: thread=True runs a plain function; this one is async"
            )
        if value and self.context_param is not None:
            raise LocalProtocolError(
                f"tool {self.name!r}: a ToolContext is awaited; thread=True runs no awaits"
            )

    @header_params.default
    def _make_header_params(self) -> tuple[HeaderParam, ...]:
        return header_params(self.name, self.input_schema)

    @context_param.default
    def _make_context_param(self) -> str | None:
        return context_parameter(self.fn)

    @_input_validator.default
    def _make_input_validator(self) -> Validator:
        return _compile(self.input_schema, f"input_schema of tool {self.name!r}")

    @_output_validator.default
    def _make_output_validator(self) -> Validator | None:
        if self.output_schema is None:
            return None
        if self.output_schema.get("type") != "object":
            raise LocalProtocolError('output_schema must have "type": "object"')
        return _compile(self.output_schema, f"output_schema of tool {self.name!r}")

    @_input_shortcut.default
    def _make_input_shortcut(self) -> Callable[[Any], bool] | None:
        return shortcut(self.input_schema)

    @_output_shortcut.default
    def _make_output_shortcut(self) -> Callable[[Any], bool] | None:
        return None if self.output_schema is None else shortcut(self.output_schema)

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        title: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        policy: Policy = "lossless",
        requires: Mapping[str, Any] | None = None,
        thread: bool = False,
    ) -> Tool:
        """Declare a tool from a plain, async or async-generator function.

        The name defaults to the function's name, the description to its
        docstring (cleaned), the input schema to one derived from its
        signature (see :func:`flowkit.mcp._schema.schema_from_function`), along with
        the conversion of the arguments to the annotated types. With an
        explicit ``input_schema``, ``fn`` gets the JSON values as they are.

        Raises:
            TypeError: a parameter's annotation has no JSON Schema (the
                message names the parameter): pass ``input_schema``.
        """
        converter = None
        if input_schema is None:
            input_schema, converter = derive_signature(fn)
        return cls(
            name=name if name is not None else fn.__name__,
            description=description if description is not None else inspect.getdoc(fn) or "",
            input_schema=input_schema,
            fn=fn,
            converter=converter,
            output_schema=output_schema,
            title=title,
            annotations=annotations,
            policy=policy,
            requires=requires,
            thread=thread,
        )

    def missing_capabilities(self, declared: Any) -> dict[str, Any]:
        """The required client capabilities absent from ``declared``.

        ``declared`` is what the client sent (``capabilities`` at
        ``initialize``, or the request's ``clientCapabilities``); anything
        but an object declares nothing.
        """
        if not self.requires:
            return {}
        have = declared if isinstance(declared, Mapping) else {}
        return {name: dict(value) for name, value in self.requires.items() if name not in have}

    def validate_arguments(self, arguments: Any) -> str | None:
        """Check call arguments against the input schema.

        Returns:
            ``None`` if valid, else a message meant for the model: input
            validation failures are *tool execution errors* (``isError``
            results), which models can read and correct ("Error Handling",
            2025-11-25 tools).
        """
        fast = self._input_shortcut
        if fast is not None and fast(arguments):
            return None
        try:
            error = jsonschema.exceptions.best_match(self._input_validator.iter_errors(arguments))
        except RecursionError:
            # Nesting orjson accepts (up to 1024 levels) can exhaust Python's
            # stack in the validator or its error message: refuse, don't crash.
            return f"Invalid arguments for tool {self.name!r}: nested too deeply"
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        if len(where) > _MAX_ECHO:
            where = f"{where[:_MAX_ECHO]}..."
        location = f" at '{where}'" if where else ""
        message = _bounded(error.message, error.instance)
        return f"Invalid arguments for tool {self.name!r}{location}: {message}"

    def convert_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Valid arguments (see :meth:`validate_arguments`) as the values ``fn`` takes.

        Raises:
            ValueError: a value the schema admits that the type refuses (a
                dataclass's ``__post_init__``, a pydantic validator), with a
                message for the model, as for :meth:`validate_arguments`.
        """
        if self.converter is None:
            return dict(arguments)
        try:
            return self.converter(arguments)
        except ValueError as exc:
            raise ValueError(f"Invalid arguments for tool {self.name!r} {exc}") from exc

    def validate_structured_content(self, structured: Any) -> None:
        """Raise LocalProtocolError if ``structured`` violates the output schema."""
        if self._output_validator is None:
            return
        fast = self._output_shortcut
        if fast is not None and fast(structured):
            return
        error = jsonschema.exceptions.best_match(self._output_validator.iter_errors(structured))
        if error is not None:
            raise LocalProtocolError(
                f"structuredContent of tool {self.name!r} violates its output_schema: "
                f"{error.message}"
            )

    def to_json(self) -> dict[str, Any]:
        """The ``Tool`` object as published by ``tools/list``."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": dict(self.input_schema),
        }
        if self.title is not None:
            out["title"] = self.title
        if self.output_schema is not None:
            out["outputSchema"] = dict(self.output_schema)
        if self.annotations is not None:
            out["annotations"] = dict(self.annotations)
        return out


class ToolOptions(TypedDict, total=False):
    """The keyword options of :meth:`Tool.from_function` (and ``ToolSet.tool``)."""

    name: str | None
    description: str | None
    input_schema: Mapping[str, Any] | None
    output_schema: Mapping[str, Any] | None
    title: str | None
    annotations: Mapping[str, Any] | None
    policy: Policy
    requires: Mapping[str, Any] | None
    thread: bool


def add_listener(listeners: list[_L], listener: _L) -> Callable[[], None]:
    """Append ``listener``; return the function that takes it out again (once)."""
    listeners.append(listener)

    def remove() -> None:
        if listener in listeners:
            listeners.remove(listener)

    return remove


class ToolSet:
    """An ordered collection of tools with a ``tool()`` decorator.

    Listing order is registration order, which is deterministic and is the
    order the author chose. ``tools/list`` pages through it with opaque
    cursors that encode the position of the next page.
    """

    def __init__(self, tools: Iterator[Tool] | list[Tool] | tuple[Tool, ...] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._listeners: list[Callable[[], None]] = []
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> Tool:
        """Register ``tool``; a second tool with the same name is an error."""
        if tool.name in self._tools:
            raise LocalProtocolError(f"duplicate tool name {tool.name!r}")
        self._tools[tool.name] = tool
        self._changed()
        return tool

    def remove(self, name: str) -> Tool:
        """Unregister and return the tool called ``name`` (KeyError if none).

        Calls already running go on; new calls get "Unknown tool".
        """
        tool = self._tools.pop(name)
        self._changed()
        return tool

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every :meth:`add` and :meth:`remove`.

        The endpoint's adapter listens to turn changes into
        ``notifications/tools/list_changed`` (see
        :meth:`Endpoint.list_changed <flowkit.mcp.Endpoint.list_changed>`).

        Returns:
            A function that stops the calls: an adapter calls it when it stops
            serving, so apps made and dropped on one server leave nothing.
        """
        return add_listener(self._listeners, listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    @overload
    def tool(self, fn: _F, /) -> _F: ...  # bare decorator

    @overload
    def tool(self, /, **options: Unpack[ToolOptions]) -> Callable[[_F], _F]: ...

    def tool(self, fn: _F | None = None, /, **options: Any) -> _F | Callable[[_F], _F]:
        """Decorator registering a function as a tool; returns it unchanged.

        Usable bare (``@tools.tool``) or with the options of
        :meth:`Tool.from_function` (``@tools.tool(name="x", policy="conflate")``).
        """

        def register(f: _F) -> _F:
            self.add(Tool.from_function(f, **options))
            return f

        return register(fn) if fn is not None else register

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def page(self, cursor: str | None, page_size: int) -> tuple[list[Tool], str | None]:
        """One page of tools starting at ``cursor``, and the next cursor.

        Raises:
            RemoteProtocolError: -32602 if the cursor is not one we issued
                ("Pagination": invalid cursors SHOULD give Invalid params).
        """
        return paginate(list(self._tools.values()), cursor, page_size, "tools")
