"""The flowkit client under the conformance suite's client scenarios.

The suite launches ``python tests/system/conformance/client.py URL`` with the
scenario's name in ``MCP_CONFORMANCE_SCENARIO``. It connects (era ``auto``:
``server/discover``, else the handshake), lists the tools and calls each with
arguments made from its input schema, answering elicitation requests with
the schema's defaults.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import trio

from flowkit_client import ClientError, open_client

SCENARIO = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
# http-custom-headers checks the Base64 sentinel only on a value that needs it.
_TEXT = "Zürich, Straße 1" if SCENARIO == "http-custom-headers" else "test"
_SAMPLES: dict[str, Any] = {"integer": 1, "number": 1, "boolean": True, "string": _TEXT}
ECHO = "json_schema_echo"  # json-schema-2020-12-preservation: echo a schema back verbatim


def sample_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A value per required property (its default, else one of its type)."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    out: dict[str, Any] = {}
    for name, prop in properties.items():
        if "default" in prop:
            out[name] = prop["default"]
        elif name in required:
            out[name] = _SAMPLES.get(prop.get("type", "string"), _TEXT)
    return out


async def on_elicitation(params: Mapping[str, Any]) -> Mapping[str, Any]:
    schema = params.get("requestedSchema") or {}
    return {"action": "accept", "content": sample_arguments(schema)}


async def main(url: str) -> int:
    print("scenario:", SCENARIO or "?", file=sys.stderr)
    async with open_client(url, on_elicitation=on_elicitation) as client:
        print("era:", client.server.protocol_version, file=sys.stderr)
        tools = await client.list_tools()
        echo = any(tool.name == ECHO for tool in tools)
        for tool in tools:
            if echo:
                if tool.name != ECHO:  # the focal tool: its schema goes back as is
                    await _call(client, ECHO, {"schema": dict(tool.input_schema)})
                continue
            await _call(client, tool.name, sample_arguments(tool.input_schema))
    return 0


async def _call(client: Any, name: str, arguments: dict[str, Any]) -> None:
    try:
        result = await client.call(name, arguments)
        print(name, "->", result.text[:200], file=sys.stderr)
    except ClientError as exc:
        print(name, "failed:", exc, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(trio.run(main, sys.argv[-1]))
