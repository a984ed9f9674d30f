"""Tool declarations: pure data plus argument validation, no execution.

A :class:`Tool` is what ``tools/list`` publishes and what ``tools/call``
validates against. Running it is the adapter's business: the core only hands
the adapter the :class:`Tool`, its validated arguments and an
:class:`~flowkit.mcp.OutgoingStream` to report through. Keeping execution out
means the protocol core stays synchronous, deterministic and fuzzable.
"""

from __future__ import annotations

import base64
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar, overload

import attrs
import jsonschema
import jsonschema.exceptions
import jsonschema.validators
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from ._errors import INVALID_PARAMS, LocalProtocolError, RemoteProtocolError
from ._schema import schema_from_function

__all__ = ["Policy", "Tool", "ToolSet", "validate_tool_name"]

Policy = Literal["lossless", "conflate"]
"""How the adapter delivers a tool's intermediate output to a slow client.

``"lossless"``: the pipeline blocks while the client is slow (end-to-end
backpressure). ``"conflate"``: progress keeps only the latest value and logs
drop oldest, so the pipeline never waits on the client. The final response is
never dropped under either policy. The core treats this as opaque data.
"""

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_F = TypeVar("_F", bound=Callable[..., Any])


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
    return cls(schema)


def _check_input_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise LocalProtocolError('input_schema must be a JSON Schema object with "type": "object"')
    return schema


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
    """

    name: str = attrs.field(validator=lambda _i, _a, v: validate_tool_name(v))
    description: str
    input_schema: Mapping[str, Any] = attrs.field(converter=_check_input_schema)
    fn: Callable[..., Any] = attrs.field(eq=False, repr=False)
    output_schema: Mapping[str, Any] | None = None
    title: str | None = None
    annotations: Mapping[str, Any] | None = None
    policy: Policy = attrs.field(default="lossless")
    _input_validator: Validator = attrs.field(init=False, eq=False, repr=False)
    _output_validator: Validator | None = attrs.field(init=False, eq=False, repr=False)

    @policy.validator
    def _check_policy(self, _attribute: Any, value: str) -> None:
        if value not in ("lossless", "conflate"):
            raise LocalProtocolError(f'policy must be "lossless" or "conflate", not {value!r}')

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
    ) -> Tool:
        """Declare a tool from a plain, async or async-generator function.

        The name defaults to the function's name, the description to its
        docstring (cleaned), the input schema to one derived from its
        signature (see :func:`flowkit.mcp.schema_from_function`).
        """
        return cls(
            name=name if name is not None else fn.__name__,
            description=description if description is not None else inspect.getdoc(fn) or "",
            input_schema=input_schema if input_schema is not None else schema_from_function(fn),
            fn=fn,
            output_schema=output_schema,
            title=title,
            annotations=annotations,
            policy=policy,
        )

    def validate_arguments(self, arguments: Any) -> str | None:
        """Check call arguments against the input schema.

        Returns:
            ``None`` if valid, else a message meant for the model: input
            validation failures are *tool execution errors* (``isError``
            results), which models can read and correct ("Error Handling",
            2025-11-25 tools).
        """
        error = jsonschema.exceptions.best_match(self._input_validator.iter_errors(arguments))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        location = f" at '{where}'" if where else ""
        return f"Invalid arguments for tool {self.name!r}{location}: {error.message}"

    def validate_structured_content(self, structured: Any) -> None:
        """Raise LocalProtocolError if ``structured`` violates the output schema."""
        if self._output_validator is None:
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


_CURSOR_PREFIX = b"flowkit-tools:"


class ToolSet:
    """An ordered collection of tools with a ``tool()`` decorator.

    Listing order is registration order, which is deterministic and is the
    order the author chose. ``tools/list`` pages through it with opaque
    cursors that encode the position of the next page.
    """

    def __init__(self, tools: Iterator[Tool] | list[Tool] | tuple[Tool, ...] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> Tool:
        """Register ``tool``; a second tool with the same name is an error."""
        if tool.name in self._tools:
            raise LocalProtocolError(f"duplicate tool name {tool.name!r}")
        self._tools[tool.name] = tool
        return tool

    @overload
    def tool(self, fn: _F, /) -> _F: ...  # bare decorator

    @overload
    def tool(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        title: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        policy: Policy = "lossless",
    ) -> Callable[[_F], _F]: ...

    def tool(
        self,
        fn: _F | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        title: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        policy: Policy = "lossless",
    ) -> _F | Callable[[_F], _F]:
        """Decorator registering a function as a tool; returns it unchanged.

        Usable bare (``@tools.tool``) or with options
        (``@tools.tool(name="x", policy="conflate")``).
        """

        def register(f: _F) -> _F:
            self.add(
                Tool.from_function(
                    f,
                    name=name,
                    description=description,
                    input_schema=input_schema,
                    output_schema=output_schema,
                    title=title,
                    annotations=annotations,
                    policy=policy,
                )
            )
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
        start = 0 if cursor is None else _decode_cursor(cursor)
        tools = list(self._tools.values())
        if start > len(tools):
            raise _bad_cursor()
        end = start + page_size
        next_cursor = _encode_cursor(end) if end < len(tools) else None
        return tools[start:end], next_cursor


def _bad_cursor() -> RemoteProtocolError:
    return RemoteProtocolError("Invalid cursor", http_status=200, code=INVALID_PARAMS)


def _encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(_CURSOR_PREFIX + str(position).encode()).decode("ascii")


def _decode_cursor(cursor: Any) -> int:
    if not isinstance(cursor, str) or len(cursor) > 64:
        raise _bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise _bad_cursor() from None
    if not raw.startswith(_CURSOR_PREFIX):
        raise _bad_cursor()
    digits = raw[len(_CURSOR_PREFIX) :]
    if not digits.isdigit() or len(digits) > 9:
        raise _bad_cursor()
    return int(digits)
