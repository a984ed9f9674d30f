"""Tool results: the content blocks, and turning what a tool returns into one.

The constructors return the plain ``dict`` that goes on the wire (the spec's
"Tool Result" section, 2025-11-25), so a tool can build its result without
knowing the JSON field names, and the adapter can hand the dict straight to
:meth:`OutgoingStream.result <flowkit.mcp.OutgoingStream.result>`.

:func:`to_call_result` is the one place where a tool's value becomes a
``CallToolResult``, whatever the adapter. It holds every tool to the same rule
of **what a tool may return** (a direct result, ``Result.structured``, a
``Partial``'s data): a JSON value — ``dict`` with ``str`` keys, ``list``,
``tuple``, ``str``, ``int`` (64-bit), ``float``, ``bool``, ``None`` — or what
orjson encodes natively inside one: dataclass instances, ``datetime``,
``date``, ``time``, ``UUID`` and ``Enum`` members. Anything else (a ``set``,
``bytes``, an arbitrary object, a non-string key) is a ``TypeError``, which
the adapter reports as the call's ``isError`` result: never its ``repr``
passed off as a success.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import orjson

__all__ = [
    "Result",
    "audio_content",
    "describe_item",
    "embedded_resource",
    "error_result",
    "image_content",
    "json_value",
    "resource_contents",
    "resource_link",
    "text_content",
    "to_call_result",
    "tool_result",
    "with_delivery",
]

_RETURNABLE = (
    "JSON types (dict with str keys, list, tuple, str, int, float, bool, None), "
    "dataclasses, datetime, date, time, UUID and Enum members"
)
_MESSAGE_LIMIT = 200


def json_value(value: Any, what: str) -> bytes:
    """``value`` encoded as JSON, if it is something a tool may return.

    Raises:
        TypeError: naming ``what`` and the offending type, e.g. ``set``.
    """
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError subclasses TypeError
        raise TypeError(
            f"{what} is not a JSON value ({exc}); a tool may return {_RETURNABLE}"
        ) from None


def describe_item(item: Any, encoded: bytes | None = None) -> str:
    """A short human-readable rendering of an item, for a progress message.

    A string is itself, a JSON value its compact JSON, anything else its
    ``repr`` (a description, not a value: it never fails, even if ``repr``
    does), cut to 200 characters. ``encoded`` is the item's JSON, when the
    caller already has it.
    """
    if isinstance(item, str):
        text = item
    elif encoded is not None:
        text = encoded.decode()
    else:
        try:
            text = orjson.dumps(item).decode()
        except TypeError:
            try:
                text = repr(item)
            except Exception:
                text = f"<{type(item).__name__}>"
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


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


def resource_contents(
    uri: str,
    *,
    text: str | None = None,
    blob: bytes | str | None = None,
    mime_type: str | None = None,
) -> dict[str, Any]:
    """One item of a resource's contents: text, or a blob (``bytes`` are base64-encoded).

    Used in ``resources/read`` results and inside embedded resources.

    Raises:
        ValueError: unless exactly one of ``text`` and ``blob`` is given.
    """
    if (text is None) == (blob is None):
        raise ValueError("give exactly one of text= and blob=")
    item: dict[str, Any] = {"uri": uri}
    if mime_type is not None:
        item["mimeType"] = mime_type
    if text is not None:
        item["text"] = text
    else:
        assert blob is not None
        item["blob"] = _b64(blob)
    return item


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
    resource = resource_contents(uri, text=text, blob=blob, mime_type=mime_type)
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
        # Encoded once, and decoded back: the output schema then checks what
        # the client will see (a dataclass or a datetime inside becomes JSON).
        encoded = json_value(structured, "structuredContent")
        if not encoded.startswith(b"{"):
            raise TypeError(f"structuredContent must be a JSON object, not {encoded[:40]!r}")
        blocks.append(text_content(encoded.decode()))
        result["structuredContent"] = orjson.loads(encoded)
    if is_error:
        result["isError"] = True
    return result


def error_result(message: str) -> dict[str, Any]:
    """A tool execution error (``isError: true``) the model can read and act on."""
    return tool_result(message, is_error=True)


@attrs.frozen
class Result:
    """A tool's final result (its reduction); the last one emitted wins.

    Attributes:
        structured: ``structuredContent``; it must match the tool's output
            schema when one is declared. It is also appended as a JSON text
            block, as the spec recommends. Its values follow the rule of
            what a tool may return (see this module).
        text: a text block put first, for humans and text-only clients.
        content: further content blocks (see :func:`text_content`...).
    """

    structured: Mapping[str, Any] | None = None
    text: str | None = None
    content: Sequence[Mapping[str, Any]] = ()


def to_call_result(value: Any) -> dict[str, Any]:
    """The ``CallToolResult`` for what a tool returned or emitted as its result.

    * :class:`Result` → its text, content and structured content;
    * a mapping with a ``content`` list → taken as a ready ``CallToolResult``;
    * another mapping, or a dataclass instance → ``structuredContent`` (plus
      its JSON as text);
    * a string → one text block; ``None`` → no content;
    * any other JSON value (a list, a number, a ``datetime``...) → its JSON as
      one text block.

    Everything is checked here, before the result reaches
    :meth:`OutgoingStream.result <flowkit.mcp.OutgoingStream.result>`: a
    result that failed to encode there would leave nothing to answer with.

    Raises:
        TypeError: the value, or something inside it, is not one a tool may
            return (see this module).
    """
    if isinstance(value, Result):
        blocks: list[Mapping[str, Any]] = []
        if value.text is not None:
            blocks.append({"type": "text", "text": value.text})
        if value.content:
            json_value(value.content, "a content block")
        blocks.extend(value.content)
        return tool_result(blocks, structured=value.structured)
    if isinstance(value, Mapping):
        if isinstance(value.get("content"), list):
            return dict(orjson.loads(json_value(value, "the tool's CallToolResult")))
        return tool_result(structured=value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tool_result(structured=orjson.loads(json_value(value, "the tool's result")))
    if value is None:
        return tool_result()
    if isinstance(value, str):
        return tool_result(value)
    return tool_result(json_value(value, "the tool's result").decode())


def with_delivery(
    result: dict[str, Any], *, dropped_logs: int = 0, undelivered_partials: int = 0
) -> dict[str, Any]:
    """``result`` with what did not reach the client reported in its ``_meta``.

    ``dev.flowkit/droppedLogs``: logs the outbox dropped for a slow client
    (the ``"conflate"`` policy). ``dev.flowkit/undeliveredPartials``: partial
    results that had no carrier at all, because the client asked neither for
    logs nor for progress. Zero counts are left out.
    """
    for key, count in (
        ("dev.flowkit/droppedLogs", dropped_logs),
        ("dev.flowkit/undeliveredPartials", undelivered_partials),
    ):
        if count:
            result.setdefault("_meta", {})[key] = count
    return result
