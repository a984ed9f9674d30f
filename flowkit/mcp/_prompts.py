"""Prompt declarations: templates of messages the user picks, with string arguments.

A :class:`Prompt` is what ``prompts/list`` publishes and what ``prompts/get``
validates against; its function (opaque to the core, run by the adapter
through :class:`~flowkit.mcp.Invoke`) returns the messages. Arguments come
from the function's signature, as for tools, but MCP prompt arguments are
strings, so every parameter is a ``str`` (``Annotated[str, "description"]``
describes it, ``Literal["a", "b"]`` restricts it and is offered by
``completion/complete``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypedDict, TypeVar, Unpack

import attrs
import orjson

from ._completion import Completer, CompleterSpec, as_completers
from ._content import json_value, text_content
from ._errors import LocalProtocolError, method_params
from ._jsonrpc import RequestId
from ._pages import paginate
from ._schema import derive_signature
from ._tools import add_listener, validate_tool_name

__all__ = ["Prompt", "PromptArgument", "PromptSet", "prompt_message", "prompt_result"]

_F = TypeVar("_F", bound=Callable[..., Any])
_ROLES = ("user", "assistant")


def prompt_message(content: str | Mapping[str, Any], role: str = "user") -> dict[str, Any]:
    """A ``PromptMessage``: a string is a text block, a mapping a ready content block.

    Build the blocks with :func:`~flowkit.mcp.image_content`,
    :func:`~flowkit.mcp.embedded_resource`, :func:`~flowkit.mcp.resource_link`...

    Raises:
        ValueError: ``role`` is not ``"user"`` or ``"assistant"``.
    """
    if role not in _ROLES:
        raise ValueError(f'a prompt message\'s role is "user" or "assistant", not {role!r}')
    block = text_content(content) if isinstance(content, str) else dict(content)
    return {"role": role, "content": block}


def _message(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return prompt_message(item)
    if isinstance(item, Mapping) and "role" in item:
        if item["role"] not in _ROLES or not isinstance(item.get("content"), Mapping):
            raise TypeError(f"not a PromptMessage: {item!r:.80}")
        return dict(item)
    if isinstance(item, Mapping) and isinstance(item.get("type"), str):
        return prompt_message(item)
    raise TypeError(
        f"a prompt returns strings, content blocks or prompt_message()s, not {type(item).__name__}"
    )


def prompt_result(value: Any, description: str | None) -> dict[str, Any]:
    """The ``GetPromptResult`` for what a prompt function returned.

    * a string → one user text message;
    * a content block (``image_content(...)``...) → one user message with it;
    * a mapping with a ``messages`` list → taken as the ready result;
    * a list of strings, content blocks and :func:`prompt_message`\\ s → those
      messages, in order.

    Raises:
        TypeError: the value is none of these, or is not JSON.
    """
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        result = dict(value)
    else:
        items = value if isinstance(value, list | tuple) else [value]
        result = {"messages": [_message(item) for item in items]}
        if description:
            result["description"] = description
    return dict(orjson.loads(json_value(result, "the prompt's messages")))


@attrs.frozen
class PromptArgument:
    """One argument of a prompt (all prompt arguments are strings).

    ``choices`` holds a ``Literal`` argument's values: ``prompts/get`` refuses
    any other (the published ``PromptArgument`` has no field for them;
    ``completion/complete`` offers them).
    """

    name: str
    description: str | None = None
    required: bool = False
    choices: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "required": self.required}
        if self.description is not None:
            out["description"] = self.description
        return out


def _string_parameter(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "string":
        return True
    return kind is None and set(schema) <= {"description", "default"}  # Any, unannotated


@attrs.frozen
class Prompt:
    """One prompt as clients see it, plus the function that renders it.

    Attributes:
        name: unique name (the tool-name alphabet: 1-64 of ``[A-Za-z0-9_.-]``).
        description: what it is for (the conformance suite expects one).
        fn: called with the arguments as keyword strings; returns what
            :func:`prompt_result` accepts. It may raise ``ValueError`` to
            refuse an argument's value (the client gets -32602 with the
            message). Opaque to the core.
        arguments: the declared arguments, in signature order.
        title: optional display name.
        completers: per argument, the values ``completion/complete`` offers
            (a ``Literal`` argument offers its values unless given one).
    """

    name: str = attrs.field(validator=lambda _i, _a, v: validate_tool_name(v))
    description: str
    fn: Callable[..., Any] = attrs.field(eq=False, repr=False)
    arguments: tuple[PromptArgument, ...] = ()
    title: str | None = None
    completers: Mapping[str, Completer] = attrs.field(factory=dict, eq=False, repr=False)

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        complete: Mapping[str, CompleterSpec] | None = None,
    ) -> Prompt:
        """Declare a prompt from a function whose parameters are its (string) arguments.

        Raises:
            TypeError: a parameter is not a string (the message names it).
            LocalProtocolError: ``complete`` names no argument.
        """
        schema, _ = derive_signature(fn)
        required = set(schema.get("required", ()))
        arguments: list[PromptArgument] = []
        completers: dict[str, CompleterSpec] = {}
        for key, prop in schema["properties"].items():
            enum = prop.get("enum")
            choices: tuple[str, ...] | None = None
            if enum is not None and all(isinstance(v, str) for v in enum):
                choices = tuple(enum)
                completers[key] = list(enum)
            elif not _string_parameter(prop):
                raise TypeError(
                    f"{fn.__qualname__}({key}): prompt arguments are strings; annotate it as str"
                )
            arguments.append(PromptArgument(key, prop.get("description"), key in required, choices))
        unknown = set(complete or ()) - set(schema["properties"])
        if unknown:
            raise LocalProtocolError(
                f"prompt {name or fn.__name__!r} has no argument {', '.join(sorted(unknown))}"
            )
        completers.update(complete or {})
        return cls(
            name=name if name is not None else fn.__name__,
            description=description if description is not None else inspect.getdoc(fn) or "",
            fn=fn,
            arguments=tuple(arguments),
            title=title,
            completers=as_completers(completers),
        )

    def validate_arguments(self, arguments: Any, request_id: RequestId) -> dict[str, str]:
        """``prompts/get`` arguments, checked ("Error Handling": -32602).

        Raises:
            RemoteProtocolError: -32602 naming the argument that is missing,
                unknown or not a string.
        """
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise method_params('"arguments" must be an object', request_id)
        known = {argument.name: argument for argument in self.arguments}
        for key, value in arguments.items():
            argument = known.get(key)
            if argument is None:
                raise method_params(f"Prompt {self.name!r} has no argument {key!r}", request_id)
            if not isinstance(value, str):
                raise method_params(f"Argument {key!r} must be a string", request_id)
            if argument.choices is not None and value not in argument.choices:
                allowed = ", ".join(repr(choice) for choice in argument.choices)
                raise method_params(
                    f"Argument {key!r} must be one of {allowed}, not {value[:80]!r}", request_id
                )
        missing = [a.name for a in self.arguments if a.required and a.name not in arguments]
        if missing:
            raise method_params(
                f"Prompt {self.name!r} needs argument(s): {', '.join(missing)}", request_id
            )
        return dict(arguments)

    def to_json(self) -> dict[str, Any]:
        """The ``Prompt`` object of ``prompts/list``."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.title is not None:
            out["title"] = self.title
        if self.arguments:
            out["arguments"] = [argument.to_json() for argument in self.arguments]
        return out


class PromptOptions(TypedDict, total=False):
    """The keyword options of :meth:`Prompt.from_function` (and ``PromptSet.prompt``)."""

    name: str | None
    title: str | None
    description: str | None
    complete: Mapping[str, CompleterSpec] | None


class PromptSet:
    """The prompts one server offers, in registration order, with a ``prompt()`` decorator."""

    def __init__(self, prompts: Sequence[Prompt] = ()) -> None:
        self._prompts: dict[str, Prompt] = {}
        self._listeners: list[Callable[[], None]] = []
        for prompt in prompts:
            self.add(prompt)

    def add(self, prompt: Prompt) -> Prompt:
        """Register ``prompt``; a second one with the same name is an error."""
        if prompt.name in self._prompts:
            raise LocalProtocolError(f"duplicate prompt name {prompt.name!r}")
        self._prompts[prompt.name] = prompt
        self._changed()
        return prompt

    def remove(self, name: str) -> Prompt:
        """Unregister and return the prompt called ``name`` (KeyError if none)."""
        prompt = self._prompts.pop(name)
        self._changed()
        return prompt

    def prompt(self, /, **options: Unpack[PromptOptions]) -> Callable[[_F], _F]:
        """Decorator registering a function as a prompt; returns it unchanged."""

        def register(fn: _F) -> _F:
            self.add(Prompt.from_function(fn, **options))
            return fn

        return register

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every :meth:`add` and :meth:`remove`.

        Returns:
            A function that stops the calls (see :meth:`ToolSet.on_change`).
        """
        return add_listener(self._listeners, listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def get(self, name: str) -> Prompt | None:
        """The prompt called ``name``, or ``None``."""
        return self._prompts.get(name)

    def page(self, cursor: str | None, page_size: int) -> tuple[list[Prompt], str | None]:
        """One page of prompts and the next cursor (-32602 for a foreign cursor)."""
        return paginate(list(self._prompts.values()), cursor, page_size, "prompts")

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self._prompts.values())

    def __len__(self) -> int:
        return len(self._prompts)
