"""Per-request validation of the stateless era (2026-07-28).

A modern request carries everything a session used to hold: its protocol
version and client capabilities in ``params._meta``, and (on HTTP) copies of
its version, method and target name in headers so that load balancers can
route without parsing bodies. The server must check that those copies agree
with the body ("Server Validation", 2026-07-28 Streamable HTTP): a gateway
routing on the header while the server executes the body is an attack. All
refusals are 400 with a JSON-RPC error body, which is how a dual-era client
recognises a modern server.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import header_mismatch, request_params, unsupported_version
from ._headers import RequestHead
from ._jsonrpc import Message, Request, RequestId
from ._levels import LOG_LEVELS
from ._stream import progress_token_problem
from ._tools import Tool
from ._versions import VersionPolicy

__all__ = [
    "META_PREFIX",
    "RequestMeta",
    "decode_header_value",
    "is_modern",
    "validate_modern",
    "validate_param_headers",
]

META_PREFIX = "io.modelcontextprotocol/"
_VERSION = META_PREFIX + "protocolVersion"
_CAPABILITIES = META_PREFIX + "clientCapabilities"
_CLIENT_INFO = META_PREFIX + "clientInfo"
_LOG_LEVEL = META_PREFIX + "logLevel"
# The methods whose target is mirrored into Mcp-Name, and the param it mirrors
# ("Standard Headers", 2026-07-28 Streamable HTTP).
_NAMED = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}
_SENTINEL_START, _SENTINEL_END = "=?base64?", "?="
_ABSENT = object()


@attrs.frozen
class RequestMeta:
    """What a modern request says about itself in ``params._meta``."""

    policy: VersionPolicy
    client_capabilities: Mapping[str, Any]
    client_info: Any
    log_level: str | None
    progress_token: str | int | None


def is_modern(head: RequestHead, message: Message, versions: Mapping[str, VersionPolicy]) -> bool:
    """Era routing: is this POST a stateless-era request?

    It is if its ``MCP-Protocol-Version`` header names a per-request-metadata
    revision, or if its ``_meta`` carries a protocol version. ``initialize``
    selects the handshake era unless the header names a stateless revision:
    then it is a removed method (404, -32601), which is how a dual-era
    client learns that this server speaks the modern protocol.
    """
    header = head.get("mcp-protocol-version")
    policy = versions.get(header) if header is not None else None
    if policy is not None and policy.request_meta:
        return True
    if isinstance(message, Request) and message.method == "initialize":
        return False
    params = getattr(message, "params", None)
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and _VERSION in meta


def decode_header_value(value: str) -> str | None:
    """Undo the ``=?base64?...?=`` sentinel encoding; ``None`` if malformed."""
    if not (value.startswith(_SENTINEL_START) and value.endswith(_SENTINEL_END)):
        return value
    encoded = value[len(_SENTINEL_START) : -len(_SENTINEL_END)]
    try:
        return base64.b64decode(encoded.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None


def validate_modern(
    head: RequestHead, request: Request, versions: Mapping[str, VersionPolicy]
) -> RequestMeta:
    """Check a stateless-era request's ``_meta`` and mirrored headers.

    Raises:
        RemoteProtocolError: 400 with -32602 (``_meta`` fields missing or
            malformed), -32022 (version not served; ``data.supported`` and
            ``data.requested``) or -32020 (a required header is missing,
            malformed, or disagrees with the body).
    """
    rid = request.id
    meta = request.params.get("_meta")
    if not isinstance(meta, dict):
        raise request_params('Missing "_meta" with protocol version and client capabilities', rid)
    version = meta.get(_VERSION)
    capabilities = meta.get(_CAPABILITIES)
    if not isinstance(version, str) or not isinstance(capabilities, dict):
        raise request_params(
            f'"_meta" must carry "{_VERSION}" (string) and "{_CAPABILITIES}" (object)', rid
        )
    # The header must mirror the body before the version itself is judged:
    # a header naming a served revision over a body naming another is a
    # mismatch (-32020), not an unsupported version. A binding without a
    # header layer (stdio) mirrors nothing: the body alone counts.
    mirrored = head.binding == "http"
    header = head.get("mcp-protocol-version")
    if mirrored and header is None:
        raise header_mismatch("MCP-Protocol-Version header is required", rid)
    if mirrored and header != version:
        raise header_mismatch(
            f"MCP-Protocol-Version {header!r} does not match body {version!r}", rid
        )
    policy = versions.get(version)
    if policy is None or not policy.request_meta:
        raise unsupported_version(version, list(versions), rid)
    if mirrored and policy.method_headers:
        method = head.get("mcp-method")
        if method is None:
            raise header_mismatch("Mcp-Method header is required", rid)
        if method != request.method:
            raise header_mismatch(
                f"Mcp-Method {method!r} does not match body {request.method!r}", rid
            )
        named = _NAMED.get(request.method)
        if named is not None:
            raw = head.get("mcp-name")
            if raw is None:
                raise header_mismatch(f"Mcp-Name header is required for {request.method}", rid)
            name = decode_header_value(raw)
            if name is None:
                raise header_mismatch("Mcp-Name header is not valid base64 sentinel encoding", rid)
            if name != request.params.get(named):
                raise header_mismatch(f"Mcp-Name {name!r} does not match body", rid)
    log_level = meta.get(_LOG_LEVEL)
    if log_level is not None and (not isinstance(log_level, str) or log_level not in LOG_LEVELS):
        raise request_params(f"Invalid log level: {log_level!r}", rid)
    token = meta.get("progressToken")
    problem = progress_token_problem(token)
    if problem is not None:
        raise request_params(problem, rid)
    return RequestMeta(policy, capabilities, meta.get(_CLIENT_INFO), log_level, token)


def _header_safe(value: str) -> bool:
    # RFC 9110 field values: visible ASCII, space and horizontal tab.
    return all(c == "\t" or " " <= c <= "~" for c in value)


def _argument_at(arguments: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = arguments
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return _ABSENT
        node = node[key]
    return _ABSENT if node is None else node


def _header_matches(text: str, value: Any) -> bool:
    """Does a decoded ``Mcp-Param-*`` value stand for the body's ``value``?"""
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, int | float):
        # Integers compare numerically ("42.0" and 42 are equal).
        try:
            return float(text) == value
        except ValueError:
            return False
    return isinstance(value, str) and text == value


def validate_param_headers(
    head: RequestHead, tool: Tool, arguments: Mapping[str, Any], request_id: RequestId
) -> None:
    """Check the ``Mcp-Param-*`` headers of a ``tools/call`` against its arguments.

    "Server Behavior for Custom Headers" (2026-07-28 Streamable HTTP): for
    each argument the tool mirrors into a header (``x-mcp-header``), a value
    in the body needs the header, the header needs the value, and the header
    (after Base64 sentinel decoding, which must be strict) must equal it.

    Raises:
        RemoteProtocolError: 400 / -32020 on any mismatch or malformed value.
    """
    if head.binding != "http":
        return  # no header layer, nothing mirrored (stdio)
    for param in tool.header_params:
        label = f"Mcp-Param-{param.name}"
        value = _argument_at(arguments, param.path)
        raw = head.get(param.header)
        if raw is None:
            if value is not _ABSENT:
                raise header_mismatch(
                    f"{label} header is required (the argument is set)", request_id
                )
            continue
        if value is _ABSENT:
            raise header_mismatch(f"{label} header given but the argument is absent", request_id)
        if not _header_safe(raw):
            raise header_mismatch(f"{label} header contains invalid characters", request_id)
        text = decode_header_value(raw)
        if text is None:
            raise header_mismatch(
                f"{label} header is not valid base64 sentinel encoding", request_id
            )
        if not _header_matches(text, value):
            raise header_mismatch(f"{label} header does not match the argument", request_id)
