"""Tool declarations, schema derivation, tools/list and tools/call validation.

Spec: 2025-11-25 "Tools" ("Tool Names", "Listing Tools", "Calling Tools",
"Error Handling", "Structured Content") and "Pagination".
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal, Optional

import orjson
import pytest

from flowkit.mcp import (
    EndpointConfig,
    LocalProtocolError,
    Reply,
    StartCall,
    Tool,
    ToolSet,
    audio_content,
    embedded_resource,
    error_result,
    image_content,
    resource_link,
    text_content,
    tool_result,
)
from flowkit.mcp._schema import schema_from_function

from ._client import Client, body_json, make_endpoint


def _fn() -> None:
    pass


_SENTINEL = object()


@pytest.mark.parametrize(
    "name", ["a", "getUser", "DATA_EXPORT_v2", "admin.tools.list", "x-y", "a" * 64]
)
def test_valid_tool_names(name: str) -> None:
    assert Tool(name, "", {"type": "object"}, _fn).name == name


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "comma,", "slash/", "ünï", "tab\t"])
def test_invalid_tool_names(name: str) -> None:
    """ "Tool Names": 1-64 (conformance) chars of [A-Za-z0-9_.-]."""
    with pytest.raises(LocalProtocolError):
        Tool(name, "", {"type": "object"}, _fn)


def test_input_schema_must_be_an_object_schema() -> None:
    with pytest.raises(LocalProtocolError):
        Tool("t", "", {"type": "array"}, _fn)
    with pytest.raises(LocalProtocolError):
        Tool("t", "", {"type": "object", "properties": 5}, _fn)
    with pytest.raises(LocalProtocolError):
        Tool("t", "", {"type": "object"}, _fn, output_schema={"type": "string"})
    with pytest.raises(LocalProtocolError):
        Tool("t", "", {"type": "object"}, _fn, policy="drop-everything")  # type: ignore[arg-type]


def test_schema_derivation() -> None:
    def f(
        a: int,
        b: float,
        c: str,
        d: bool,
        e: list[int],
        f: dict[str, float],
        g: Optional[str],  # noqa: UP045
        h: Literal["x", "y"],
        i: Annotated[int, "how many"],
        j: Sequence[str] = (),
        k: int | None = None,
        m: dict = {},  # type: ignore[type-arg]  # noqa: B006
        n: Any = 1,
        o: tuple[int, ...] = (1,),
        *,
        p: Literal[1, "a"] = 1,
        q: Any = _SENTINEL,  # non-JSON default: not published
    ) -> None:
        pass

    schema = schema_from_function(f)
    props = schema["properties"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
    assert props["a"] == {"type": "integer"}
    assert props["b"] == {"type": "number"}
    assert props["c"] == {"type": "string"}
    assert props["d"] == {"type": "boolean"}
    assert props["e"] == {"type": "array", "items": {"type": "integer"}}
    assert props["f"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["g"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert props["h"] == {"enum": ["x", "y"], "type": "string"}
    assert props["i"] == {"type": "integer", "description": "how many"}
    assert props["j"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert props["k"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert props["m"] == {"type": "object", "default": {}}
    assert props["n"] == {"default": 1}
    assert props["o"]["items"] == {"type": "integer"}
    assert props["p"] == {"enum": [1, "a"], "default": 1}
    assert "default" not in props["q"]
    Tool.from_function(f)  # the derived schema is a valid JSON Schema


def test_schema_derivation_refuses_what_json_cannot_carry() -> None:
    def star(*args: int) -> None: ...
    def kw(**kwargs: int) -> None: ...
    def pos(a: int, /) -> None: ...
    def weird(a: complex) -> None: ...
    def keys(a: dict[int, str]) -> None: ...
    def fixed(a: tuple[int, str]) -> None: ...

    for fn in (star, kw, pos, weird, keys, fixed):
        with pytest.raises(TypeError, match=r"\((args|kwargs|a)\)"):  # names the parameter
            schema_from_function(fn)


def test_tool_decorator_plain_async_and_async_generator() -> None:
    tools = ToolSet()

    @tools.tool
    def plain(x: int) -> int:
        """Plain tool.

        More text.
        """
        return x

    @tools.tool(name="renamed", description="explicit", policy="conflate", title="Nice")
    async def coro() -> None:
        pass

    @tools.tool(input_schema={"type": "object", "properties": {"q": {"type": "string"}}})
    async def gen(**anything: Any) -> AsyncIterator[int]:
        yield 1

    assert plain(2) == 2  # returned unchanged
    assert [t.name for t in tools] == ["plain", "renamed", "gen"]
    assert tools.get("plain") is not None
    assert tools.get("plain").description == "Plain tool.\n\nMore text."  # type: ignore[union-attr]
    renamed = tools.get("renamed")
    assert renamed is not None
    assert (renamed.description, renamed.policy, renamed.title) == ("explicit", "conflate", "Nice")
    assert renamed.to_json()["title"] == "Nice"
    assert "renamed" in tools
    assert len(tools) == 3
    with pytest.raises(LocalProtocolError):
        tools.add(Tool("plain", "", {"type": "object"}, _fn))


def _listing(n: int, page_size: int) -> tuple[Client, ToolSet]:
    tools = ToolSet()
    for i in range(n):
        tools.add(Tool(f"t{i:03d}", f"tool {i}", {"type": "object"}, _fn))
    endpoint = make_endpoint(EndpointConfig(page_size=page_size), tools=tools)
    client = Client(endpoint)
    client.initialize()
    return client, tools


def test_tools_list_paginates_deterministically() -> None:
    """ "Pagination": opaque cursors, stable order, missing nextCursor ends."""
    client, _ = _listing(7, 3)
    names: list[str] = []
    cursor = None
    pages = 0
    while True:
        reply = client.request("tools/list", {} if cursor is None else {"cursor": cursor})
        assert isinstance(reply, Reply)
        result = body_json(reply)["result"]
        names += [t["name"] for t in result["tools"]]
        pages += 1
        cursor = result.get("nextCursor")
        if cursor is None:
            break
    assert names == [f"t{i:03d}" for i in range(7)]
    assert pages == 3
    again = client.request("tools/list")
    assert isinstance(again, Reply)
    assert [t["name"] for t in body_json(again)["result"]["tools"]] == names[:3]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        5,
        "",
        base64.urlsafe_b64encode(b"flowkit-tools:999").decode(),
        base64.urlsafe_b64encode(b"other:1").decode(),
        "x" * 100,
    ],
)
def test_invalid_cursor_is_invalid_params(cursor: Any) -> None:
    client, _ = _listing(2, 1)
    reply = client.request("tools/list", {"cursor": cursor})
    assert isinstance(reply, Reply)
    assert body_json(reply)["error"]["code"] == -32602


def test_tool_json_shape() -> None:
    client, _ = _listing(1, 10)
    reply = client.request("tools/list")
    assert isinstance(reply, Reply)
    (tool,) = body_json(reply)["result"]["tools"]
    assert tool == {"name": "t000", "description": "tool 0", "inputSchema": {"type": "object"}}


def test_unknown_tool_is_invalid_params() -> None:
    """ "Error Handling": unknown tools are protocol errors (-32602)."""
    client = Client(make_endpoint())
    client.initialize()
    reply = client.call("nope", id=3)
    assert isinstance(reply, Reply)
    assert reply.status == 200
    assert body_json(reply)["error"] == {"code": -32602, "message": "Unknown tool: nope"}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"name": 5},
        {"name": "count", "arguments": [1]},
        {"name": "count", "arguments": {"n": 1}, "_meta": 3},
        {"name": "count", "arguments": {"n": 1}, "_meta": {"progressToken": 1.5}},
    ],
)
def test_malformed_call_is_invalid_params(params: dict[str, Any]) -> None:
    client = Client(make_endpoint())
    client.initialize()
    reply = client.request("tools/call", params)
    assert isinstance(reply, Reply)
    assert body_json(reply)["error"]["code"] == -32602


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({}, "'n' is a required property"),
        ({"n": "x"}, "at 'n'"),
        ({"n": 1, "extra": 1}, "extra"),
        ({"n": 1, "label": 3}, "at 'label'"),
    ],
)
def test_invalid_arguments_are_an_is_error_result(arguments: dict[str, Any], fragment: str) -> None:
    """ "Error Handling": input validation errors are tool execution errors."""
    endpoint = make_endpoint()
    client = Client(endpoint)
    client.initialize()
    reply = client.call("count", arguments, id=9)
    assert isinstance(reply, Reply)
    result = body_json(reply)["result"]
    assert result["isError"] is True
    assert fragment in result["content"][0]["text"]
    session = endpoint.sessions.get_any(client.session_id or "")
    assert session is not None
    assert not session.in_flight


def test_valid_call_starts_with_everything_the_adapter_needs() -> None:
    client = Client(make_endpoint())
    client.initialize()
    action = client.call("count", {"n": 2}, id="r1", progress_token=7)
    assert isinstance(action, StartCall)
    assert action.request_id == "r1"
    assert action.arguments == {"n": 2}
    assert action.progress_token == 7
    assert action.tool.name == "count"
    assert action.session_id == client.session_id
    assert action.stream.request_id == "r1"
    assert action.stream.session_id == client.session_id


def test_duplicate_in_flight_id_is_refused() -> None:
    client = Client(make_endpoint())
    client.initialize()
    client.start(id=1)
    reply = client.call("count", {"n": 1}, id=1)
    assert isinstance(reply, Reply)
    assert body_json(reply)["error"]["code"] == -32600
    assert isinstance(client.call("count", {"n": 1}, id="1"), StartCall)  # "1" is not 1


def test_content_constructors() -> None:
    """ "Tool Result": text, image, audio, resource_link, embedded resource."""
    assert text_content("hi") == {"type": "text", "text": "hi"}
    assert image_content(b"\x00\x01", "image/png", annotations={"priority": 1}) == {
        "type": "image",
        "data": "AAE=",
        "mimeType": "image/png",
        "annotations": {"priority": 1},
    }
    assert audio_content("AAE=", "audio/wav")["data"] == "AAE="
    assert resource_link("file:///a", "a", mime_type="text/plain", size=3) == {
        "type": "resource_link",
        "uri": "file:///a",
        "name": "a",
        "mimeType": "text/plain",
        "size": 3,
    }
    assert embedded_resource("file:///a", text="x")["resource"] == {"uri": "file:///a", "text": "x"}
    assert (
        embedded_resource("file:///b", blob=b"\x00", mime_type="x/y")["resource"]["blob"] == "AA=="
    )
    with pytest.raises(ValueError, match="exactly one"):
        embedded_resource("file:///c")


def test_tool_result_serialises_structured_content_as_text() -> None:
    """ "Structured Content": SHOULD also return the serialized JSON in a TextContent block."""
    result = tool_result("summary", structured={"sum": 3})
    assert result["structuredContent"] == {"sum": 3}
    assert result["content"] == [text_content("summary"), text_content('{"sum":3}')]
    assert orjson.loads(result["content"][1]["text"]) == {"sum": 3}
    assert "isError" not in result
    assert error_result("bad") == {"content": [text_content("bad")], "isError": True}
    assert tool_result() == {"content": []}
