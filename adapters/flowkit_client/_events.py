"""What a call yields while it runs, and what the client learns of a server.

A tool call is a stream: :class:`Progress` and :class:`LogMessage` events as
the server sends them, then exactly one :class:`ToolResult`. They are frozen
attrs values so that a test can compare a whole run with ``==``. Partial
results travel as logs (``notifications/message`` whose ``data`` is the
partial), which is how flowkit sends them and what the spec offers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from ._exceptions import ToolError

__all__ = ["Event", "LogMessage", "Progress", "ServerInfo", "ToolInfo", "ToolResult"]


@attrs.frozen
class Progress:
    """A ``notifications/progress`` for the call.

    Attributes:
        progress: the value so far (it increases with every event).
        total: what it will reach, if the server knows.
        message: human-readable status, if any.
    """

    progress: float
    total: float | None = None
    message: str | None = None


@attrs.frozen
class LogMessage:
    """A ``notifications/message`` sent on the call's stream: a log or a partial result.

    Attributes:
        level: the syslog level name (``"info"``, ``"warning"``, ...).
        data: the payload: any JSON value (a partial result, for flowkit tools).
        logger: the logger name, if the server gave one.
    """

    level: str
    data: Any
    logger: str | None = None


@attrs.frozen
class ToolResult:
    """The final result of a tool call.

    Attributes:
        content: the content blocks (``{"type": "text", "text": ...}``, ...).
        structured: ``structuredContent``, or ``None``.
        is_error: the tool ran and failed (``isError``); not a protocol error.
        meta: the result's ``_meta``, or empty.
    """

    content: tuple[Mapping[str, Any], ...] = ()
    structured: Any = None
    is_error: bool = False
    meta: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_json(cls, result: Mapping[str, Any]) -> ToolResult:
        """Build one from a ``tools/call`` result object."""
        content = result.get("content")
        meta = result.get("_meta")
        return cls(
            tuple(block for block in content if isinstance(block, Mapping))
            if isinstance(content, list)
            else (),
            result.get("structuredContent"),
            result.get("isError") is True,
            meta if isinstance(meta, Mapping) else {},
        )

    @property
    def text(self) -> str:
        """The text blocks joined with newlines (``""`` if there are none)."""
        return "\n".join(
            str(block["text"]) for block in self.content if block.get("type") == "text"
        )

    def raise_for_error(self) -> ToolResult:
        """Raise :class:`ToolError` if the tool failed; else return ``self`` (chainable)."""
        if self.is_error:
            raise ToolError(self.text or "the tool reported an error", self)
        return self


Event: TypeAlias = Progress | LogMessage | ToolResult
"""What iterating a call yields; the :class:`ToolResult` comes last."""


@attrs.frozen
class ToolInfo:
    """One entry of ``tools/list``.

    Attributes:
        name: the tool's name.
        description: what it does, or ``""``.
        input_schema: the JSON Schema of its arguments.
        output_schema: the JSON Schema of its structured result, if declared.
    """

    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = attrs.field(factory=dict)
    output_schema: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, tool: Mapping[str, Any]) -> ToolInfo:
        """Build one from a ``tools/list`` entry."""
        schema = tool.get("inputSchema")
        output = tool.get("outputSchema")
        return cls(
            str(tool.get("name", "")),
            str(tool.get("description") or ""),
            schema if isinstance(schema, Mapping) else {},
            output if isinstance(output, Mapping) else None,
        )


@attrs.frozen
class ServerInfo:
    """What negotiation learnt of the server.

    Attributes:
        protocol_version: the revision in force (``"2026-07-28"``, ``"2025-11-25"``).
        capabilities: the server's capabilities object.
        name: ``serverInfo.name``, or ``""``.
        version: ``serverInfo.version``, or ``""``.
        instructions: the server's instructions, if any.
    """

    protocol_version: str
    capabilities: Mapping[str, Any] = attrs.field(factory=dict)
    name: str = ""
    version: str = ""
    instructions: str | None = None
