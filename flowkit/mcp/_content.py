"""Constructors for tool results and the content blocks they contain.

Each returns the plain ``dict`` that goes on the wire (the spec's "Tool
Result" section, 2025-11-25), so a tool can build its result without knowing
the JSON field names, and the adapter can hand the dict straight to
:meth:`OutgoingStream.result <flowkit.mcp.OutgoingStream.result>`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = [
    "audio_content",
    "embedded_resource",
    "error_result",
    "image_content",
    "resource_link",
    "text_content",
    "tool_result",
]


def _b64(data: bytes | str) -> str:
    return data if isinstance(data, str) else base64.b64encode(data).decode("ascii")


def _annotate(block: dict[str, Any], annotations: Mapping[str, Any] | None) -> dict[str, Any]:
    if annotations is not None:
        block["annotations"] = dict(annotations)
    return block


def text_content(text: str, *, annotations: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``text`` content block."""
    return _annotate({"type": "text", "text": text}, annotations)


def image_content(
    data: bytes | str, mime_type: str, *, annotations: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An ``image`` block; ``bytes`` are base64-encoded, ``str`` is taken as base64."""
    return _annotate({"type": "image", "data": _b64(data), "mimeType": mime_type}, annotations)


def audio_content(
    data: bytes | str, mime_type: str, *, annotations: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An ``audio`` block; ``bytes`` are base64-encoded, ``str`` is taken as base64."""
    return _annotate({"type": "audio", "data": _b64(data), "mimeType": mime_type}, annotations)


def resource_link(
    uri: str,
    name: str,
    *,
    description: str | None = None,
    mime_type: str | None = None,
    title: str | None = None,
    size: int | None = None,
    annotations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``resource_link`` block: a URI the client may fetch or subscribe to."""
    block: dict[str, Any] = {"type": "resource_link", "uri": uri, "name": name}
    for key, value in (
        ("description", description),
        ("mimeType", mime_type),
        ("title", title),
        ("size", size),
    ):
        if value is not None:
            block[key] = value
    return _annotate(block, annotations)


def embedded_resource(
    uri: str,
    *,
    text: str | None = None,
    blob: bytes | None = None,
    mime_type: str | None = None,
    annotations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``resource`` block embedding the resource's contents (text or blob).

    Raises:
        ValueError: unless exactly one of ``text`` and ``blob`` is given.
    """
    if (text is None) == (blob is None):
        raise ValueError("give exactly one of text= and blob=")
    resource: dict[str, Any] = {"uri": uri}
    if mime_type is not None:
        resource["mimeType"] = mime_type
    if text is not None:
        resource["text"] = text
    else:
        assert blob is not None
        resource["blob"] = _b64(blob)
    return _annotate({"type": "resource", "resource": resource}, annotations)


def tool_result(
    content: Sequence[Mapping[str, Any]] | str | None = None,
    *,
    structured: Mapping[str, Any] | None = None,
    is_error: bool = False,
) -> dict[str, Any]:
    """A ``CallToolResult``.

    Args:
        content: content blocks, or a string for a single text block.
        structured: ``structuredContent``. It is also serialised as a text
            block (appended), as the spec recommends for clients that only
            read ``content`` ("Structured Content").
        is_error: mark the result as a tool execution error.
    """
    if isinstance(content, str):
        blocks: list[Any] = [text_content(content)]
    else:
        blocks = [dict(b) for b in content or ()]
    result: dict[str, Any] = {"content": blocks}
    if structured is not None:
        structured = dict(structured)
        blocks.append(text_content(orjson.dumps(structured).decode()))
        result["structuredContent"] = structured
    if is_error:
        result["isError"] = True
    return result


def error_result(message: str) -> dict[str, Any]:
    """A tool execution error (``isError: true``) the model can read and act on."""
    return tool_result(message, is_error=True)
