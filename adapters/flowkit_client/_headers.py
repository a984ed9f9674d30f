"""The HTTP headers a 2026-07-28 request mirrors: ``Mcp-Name`` and ``Mcp-Param-*``.

"Standard headers" (2026-07-28): a request names its method and target in
headers, and a tool's arguments annotated ``x-mcp-header`` in its input
schema are mirrored as ``Mcp-Param-<Name>`` so that proxies can route on
them without reading the body. A value that is not visible ASCII travels as
``=?base64?...?=``, the sentinel the server decodes. Which arguments a tool
mirrors is read by the core (``flowkit.mcp.header_params``), the
same reading the server checks against.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from flowkit.mcp import header_params

__all__ = ["header_value", "param_headers"]


def header_value(text: str) -> str:
    """``text`` as a header value: as is if visible ASCII, else ``=?base64?...?=``."""
    if text.isascii() and text.isprintable() and text == text.strip():
        return text
    return "=?base64?" + base64.b64encode(text.encode()).decode("ascii") + "?="


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return header_value(str(value))


def param_headers(
    name: str, schema: Mapping[str, Any], arguments: Mapping[str, Any]
) -> dict[str, str]:
    """The ``Mcp-Param-*`` headers of a call to tool ``name`` (input ``schema``)."""
    headers: dict[str, str] = {}
    for param in header_params(name, schema):
        value: Any = arguments
        for key in param.path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is not None:
            headers[param.header] = _param_text(value)
    return headers
