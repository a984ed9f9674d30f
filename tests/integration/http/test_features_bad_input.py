"""Bad resources/prompts/completion requests on a real server: the spec's error, never a 500.

Each row is a request with one thing wrong (an unknown URI or prompt name, an
argument missing, of the wrong type or unknown), sent
in both eras (2025-11-25 in a session; 2026-07-28 stateless, with its
``_meta`` and ``Mcp-Method``/``Mcp-Name`` headers). Each gets its JSON-RPC
error: -32602 for what the spec calls invalid params, resource not found as
-32002 (2025) / -32602 with ``data.uri`` (2026, SEP-2164); and the server
answers the next request. A large argument under the body limit is served,
a long completion value filtered (a body over the limit is 413 with a
JSON-RPC error for every method: ``tests/reliability/test_bad_input.py``).
"""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio

from flowkit_http import MCPApp, MCPServer

from ._raw import JSON_HEADERS, initialize, request
from ._serving import serving
from .test_sdk_resources import make_server

MAX_BODY = 256 * 1024
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
_PROMPT = {"name": "reply"}
_TEMPLATE_REF = {"type": "ref/resource", "uri": "memo://days/{day}"}


@attrs.frozen
class Row:
    name: str
    method: str
    params: dict[str, Any]
    message: str  # in the error message
    not_found: bool = False  # resource not found: -32002 before 2026-07-28


ROWS = [
    Row("unknown URI", "resources/read", {"uri": "memo://nope"}, "Resource not found", True),
    Row(
        "template reader: no such day",
        "resources/read",
        {"uri": "memo://days/sun"},
        "Resource not found",
        True,
    ),
    Row("URI not a string", "resources/read", {"uri": 7}, '"uri" must be a string'),
    Row("URI missing", "resources/read", {}, '"uri" must be a string'),
    Row("unknown prompt", "prompts/get", {"name": "nope"}, "Unknown prompt: nope"),
    Row("prompt name not a string", "prompts/get", {"name": ["reply"]}, "must be a string"),
    Row("required argument missing", "prompts/get", _PROMPT, "needs argument(s): message"),
    Row(
        "argument of the wrong type",
        "prompts/get",
        {**_PROMPT, "arguments": {"message": 42}},
        "Argument 'message' must be a string",
    ),
    Row(
        "unknown argument",
        "prompts/get",
        {**_PROMPT, "arguments": {"message": "hi", "mood": "x"}},
        "no argument 'mood'",
    ),
    Row(
        "arguments not an object",
        "prompts/get",
        {**_PROMPT, "arguments": "message=hi"},
        '"arguments" must be an object',
    ),
    Row(
        "completion of an unknown prompt",
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "x", "value": ""}},
        "Unknown prompt: nope",
    ),
    Row(
        "completion of an unknown template",
        "completion/complete",
        {
            "ref": {"type": "ref/resource", "uri": "memo://{x}"},
            "argument": {"name": "x", "value": ""},
        },
        "Unknown resource template",
    ),
    Row(
        "completion of an unknown variable",
        "completion/complete",
        {"ref": _TEMPLATE_REF, "argument": {"name": "month", "value": ""}},
        "No argument 'month'",
    ),
    Row(
        "completion value not a string",
        "completion/complete",
        {"ref": _TEMPLATE_REF, "argument": {"name": "day", "value": None}},
        '"value" must be a string',
    ),
    Row(
        "completion ref of another type",
        "completion/complete",
        {"ref": {"type": "ref/tool", "name": "x"}, "argument": {"name": "x", "value": ""}},
        '"ref.type"',
    ),
    Row(
        "completion context not strings",
        "completion/complete",
        {
            "ref": _TEMPLATE_REF,
            "argument": {"name": "day", "value": ""},
            "context": {"arguments": {"day": 1}},
        },
        '"context.arguments" must map names to strings',
    ),
]


def _name(row: Row) -> str | None:
    """What ``Mcp-Name`` mirrors (resources/read: the URI; prompts/get: the name)."""
    key = {"resources/read": "uri", "prompts/get": "name"}.get(row.method)
    value = row.params.get(key) if key else None
    return value if isinstance(value, str) else None


def _server() -> MCPServer:
    server = make_server()
    server.config = attrs.evolve(server.config, max_body_size=MAX_BODY)

    @server.prompt()
    def summarize(text: str) -> str:
        """Summarize a text."""
        return f"Summarize in one line: {text[:40]}... ({len(text)} characters)"

    return server


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    response = await client.post(url, content=body, headers=headers)
    assert b"Traceback" not in response.content
    return response.status_code, orjson.loads(response.content)


@pytest.mark.parametrize("era", ["2025-11-25", "2026-07-28"])
async def test_bad_feature_requests_get_the_spec_error_in_both_eras(era: str) -> None:
    modern = era == "2026-07-28"
    failures: list[str] = []
    with trio.fail_after(60):
        async with serving(MCPApp(_server())) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            session = {} if modern else await initialize(client, url)
            for row in ROWS:
                headers = {**JSON_HEADERS, **session}
                params = row.params
                if modern:
                    params = {**params, "_meta": META}
                    headers |= {"mcp-protocol-version": era, "mcp-method": row.method}
                    if (name := _name(row)) is not None:
                        headers["mcp-name"] = name
                    elif row.method != "completion/complete":
                        continue  # no Mcp-Name can mirror it: -32020 comes first (tested elsewhere)
                status, message = await _post(
                    client, url, request(row.method, 1, **params), headers
                )
                error = message.get("error") or {}
                code = -32002 if row.not_found and not modern else -32602
                if (
                    status >= 500
                    or error.get("code") != code
                    or row.message not in error.get("message", "")
                ):
                    failures.append(f"{row.name}: {status} {message}")
                if row.not_found and error.get("data") != {"uri": row.params["uri"]}:
                    failures.append(f"{row.name}: data {error.get('data')}")
            # Oversized: a body over the limit is refused with 413 and a JSON-RPC
            # error whatever its method (tests/reliability/test_bad_input.py
            # checks it byte for byte); a large argument under it is served.
            huge: dict[str, Any] = {"name": "summarize"}
            big_headers = {**JSON_HEADERS, **session}
            if modern:
                huge["_meta"] = META
                big_headers |= {
                    "mcp-protocol-version": era,
                    "mcp-method": "prompts/get",
                    "mcp-name": "summarize",
                }
            huge["arguments"] = {"text": "y" * (MAX_BODY // 2)}
            status, message = await _post(
                client, url, request("prompts/get", 3, **huge), big_headers
            )
            assert status == 200, message
            assert "131072 characters" in message["result"]["messages"][0]["content"]["text"]
            # A long completion value is filtered, not refused.
            complete = {"ref": _TEMPLATE_REF, "argument": {"name": "day", "value": "m" * 100_000}}
            completion_headers = {**JSON_HEADERS, **session}
            if modern:
                complete["_meta"] = META
                completion_headers |= {
                    "mcp-protocol-version": era,
                    "mcp-method": "completion/complete",
                }
            status, message = await _post(
                client, url, request("completion/complete", 4, **complete), completion_headers
            )
            assert (status, message["result"]["completion"]["values"]) == (200, [])
    assert not failures, "\n".join(failures)
