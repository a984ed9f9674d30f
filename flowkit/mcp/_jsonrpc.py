"""JSON-RPC 2.0 messages: parse one per POST body, encode with orjson.

MCP over Streamable HTTP carries exactly one JSON-RPC message per POST body
(batches were removed in 2025-06-18; we refuse them for every revision because
one message per request is what lets a response stream be scoped to its
request). Parsing is strict about the envelope and lenient about nothing else:
the envelope decides the HTTP status (400 with -32700 or -32600), while
``params`` are checked later by the method handlers, which know their shape.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import attrs
import orjson

from ._errors import invalid_request, parse_error

__all__ = [
    "Message",
    "Notification",
    "Request",
    "RequestId",
    "Response",
    "encode_error",
    "encode_notification",
    "encode_result",
    "error_message",
    "notification_message",
    "parse_message",
    "request_message",
    "result_message",
]

RequestId: TypeAlias = str | int
"""A JSON-RPC request id. MCP forbids ``null``; we also refuse floats and bools,
whose equality with ints would make ids collide in the in-flight table."""


@attrs.frozen
class Request:
    """A JSON-RPC request: has an ``id`` and expects exactly one response."""

    id: RequestId
    method: str
    params: dict[str, Any]


@attrs.frozen
class Notification:
    """A JSON-RPC notification: no ``id``, never answered (HTTP 202)."""

    method: str
    params: dict[str, Any]


@attrs.frozen
class Response:
    """A JSON-RPC response (result or error) sent *by the client*.

    The answer to a request a tool sent it (elicitation, sampling, roots);
    acknowledged with 202 whether or not anything awaits it.
    """

    id: RequestId | None
    result: Any
    error: Any


Message: TypeAlias = Request | Notification | Response


def _valid_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def parse_message(body: bytes) -> Message:
    """Parse one POST body into a JSON-RPC message.

    Raises:
        RemoteProtocolError: 400 with -32700 if the body is not UTF-8 JSON, or
            400 with -32600 if it is JSON but not a single JSON-RPC 2.0
            message (arrays, wrong ``jsonrpc``, bad ``id``/``method``/
            ``params``).
    """
    try:
        # orjson rejects invalid UTF-8 (including lone surrogates) itself.
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise parse_error() from None
    if isinstance(value, list):
        raise invalid_request("Invalid request: batches (JSON arrays) are not supported")
    if not isinstance(value, dict):
        raise invalid_request("Invalid request: body must be a JSON-RPC object")
    raw_id = value.get("id")
    request_id = raw_id if _valid_id(raw_id) else None
    if value.get("jsonrpc") != "2.0":
        raise invalid_request('Invalid request: "jsonrpc" must be "2.0"', request_id)
    if "method" in value:
        method = value["method"]
        if not isinstance(method, str):
            raise invalid_request('Invalid request: "method" must be a string', request_id)
        params = value.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise invalid_request('Invalid request: "params" must be an object', request_id)
        if "id" not in value:
            return Notification(method, params)
        if request_id is None:
            raise invalid_request('Invalid request: "id" must be a string or an integer')
        return Request(request_id, method, params)
    if "result" in value or "error" in value:
        if "id" in value and raw_id is not None and request_id is None:
            raise invalid_request('Invalid response: "id" must be a string or an integer')
        return Response(request_id, value.get("result"), value.get("error"))
    raise invalid_request(
        "Invalid request: neither a request, a notification nor a response", request_id
    )


def result_message(request_id: RequestId, result: Any) -> dict[str, Any]:
    """The envelope of a successful JSON-RPC response (the one place it is written)."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_message(
    request_id: RequestId | None, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    """The envelope of a JSON-RPC error response.

    Without a request id the ``id`` member is omitted, as MCP 2025-11-25's
    ``JSONRPCErrorResponse`` allows; strict MCP clients reject ``"id": null``.
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    if request_id is None:
        return {"jsonrpc": "2.0", "error": error}
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def request_message(request_id: RequestId, method: str, params: Any) -> dict[str, Any]:
    """The envelope of a JSON-RPC request the server sends (elicitation, sampling, roots)."""
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def notification_message(method: str, params: Any = None) -> dict[str, Any]:
    """The envelope of a JSON-RPC notification (``params`` omitted when ``None``)."""
    if params is None:
        return {"jsonrpc": "2.0", "method": method}
    return {"jsonrpc": "2.0", "method": method, "params": params}


def encode_result(request_id: RequestId, result: Any) -> bytes:
    """Encode a successful JSON-RPC response."""
    return orjson.dumps(result_message(request_id, result))


def encode_error(request_id: RequestId | None, code: int, message: str, data: Any = None) -> bytes:
    """Encode a JSON-RPC error response (see :func:`error_message`)."""
    return orjson.dumps(error_message(request_id, code, message, data))


def encode_notification(method: str, params: dict[str, Any] | None = None) -> bytes:
    """Encode a JSON-RPC notification."""
    return orjson.dumps(notification_message(method, params))
