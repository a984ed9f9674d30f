"""Tool list changes reach clients of both eras, and required client capabilities.

Spec: 2026-07-28 "Subscriptions" (``subscriptions/listen``: the
acknowledgement first, ``io.modelcontextprotocol/subscriptionId`` on every
notification, opt-in filtering), "Client Capabilities" /
MissingRequiredClientCapabilityError (-32021, HTTP 400); 2025-11-25 "Tools"
("List Changed Notification") on the standalone GET stream.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from flowkit.mcp import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    EndpointConfig,
    LocalProtocolError,
    OpenListenStream,
    Reply,
    StartCall,
    Tool,
    ToolSet,
)

from ._client import Client, body_json, make_endpoint, make_tools, sse_data

V = "2026-07-28"
SUB_ID = "io.modelcontextprotocol/subscriptionId"


def _meta(capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": capabilities or {},
    }


def _post(endpoint: Any, method: str, params: dict[str, Any], id: Any = 7, **headers: str) -> Any:
    raw = [
        (b"host", b"localhost:8000"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", V.encode()),
        (b"mcp-method", method.encode()),
    ]
    if method == "tools/call":
        raw.append((b"mcp-name", params["name"].encode()))
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    message = {"jsonrpc": "2.0", "id": id, "method": method, "params": params}
    return endpoint.receive_request("POST", raw, orjson.dumps(message))


def _listening(config: EndpointConfig | None = None, **filter: bool) -> tuple[Any, Any, Any]:
    tools = make_tools()
    endpoint = make_endpoint(config or EndpointConfig(tools_list_changed=True), tools=tools)
    action = _post(endpoint, "subscriptions/listen", {"_meta": _meta(), "notifications": filter})
    assert isinstance(action, OpenListenStream), action
    assert action.session_id is None
    return endpoint, tools, action.stream


def _extra_tool() -> Tool:
    return Tool.from_function(lambda: "hi", name="extra", description="An extra tool.")


def test_listen_acknowledges_first_with_the_agreed_filter() -> None:
    """The acknowledgement is the first event and names only what we honour."""
    _, _, stream = _listening(toolsListChanged=True, promptsListChanged=True)
    status, headers, first = stream.open()
    assert status == 200
    assert dict(headers)[b"content-type"] == b"text/event-stream"
    ack = sse_data(first)
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    assert ack["params"]["notifications"] == {"toolsListChanged": True}  # no prompts here
    assert ack["params"]["_meta"] == {SUB_ID: 7}


def test_tool_list_change_reaches_subscribers_tagged_with_the_subscription_id() -> None:
    endpoint, tools, stream = _listening(toolsListChanged=True)
    stream.open()
    tools.add(_extra_tool())
    [(target, data)] = endpoint.list_changed()
    assert target is stream
    message = sse_data(data)
    assert message["method"] == "notifications/tools/list_changed"
    assert message["params"]["_meta"] == {SUB_ID: 7}
    assert "id" not in message


def test_subscribers_that_did_not_ask_get_nothing() -> None:
    """ "MUST NOT send notification types the client has not requested"."""
    endpoint, tools, stream = _listening(promptsListChanged=True)
    ack = sse_data(stream.open()[2])
    assert ack["params"]["notifications"] == {}
    tools.add(_extra_tool())
    assert endpoint.list_changed() == ()


def test_no_list_changed_unless_configured() -> None:
    endpoint, tools, stream = _listening(EndpointConfig(), toolsListChanged=True)
    assert sse_data(stream.open()[2])["params"]["notifications"] == {}
    tools.add(_extra_tool())
    assert endpoint.list_changed() == ()


def test_closed_subscription_is_forgotten() -> None:
    endpoint, tools, stream = _listening(toolsListChanged=True)
    stream.open()
    assert endpoint.stream_finished(stream, disconnected=True) is False
    tools.add(_extra_tool())
    assert endpoint.list_changed() == ()


def test_listen_needs_a_filter_object() -> None:
    endpoint = make_endpoint(EndpointConfig(tools_list_changed=True))
    reply = _post(endpoint, "subscriptions/listen", {"_meta": _meta()})
    assert isinstance(reply, Reply)
    assert body_json(reply)["error"]["code"] == -32602


def test_handshake_era_get_stream_gets_list_changed() -> None:
    """2025-11-25: notifications/tools/list_changed goes out on the GET stream."""
    tools = make_tools()
    endpoint = make_endpoint(EndpointConfig(tools_list_changed=True), tools=tools)
    client = Client(endpoint)
    reply = client.initialize()
    assert body_json(reply)["result"]["capabilities"]["tools"] == {"listChanged": True}
    listen = client.get()
    assert isinstance(listen, OpenListenStream)
    listen.stream.open()
    tools.remove("add")
    [(target, data)] = endpoint.list_changed()
    assert target is listen.stream
    assert sse_data(data) == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    assert data.startswith(b"id: ")  # resumable like every event of the era


def test_toolset_remove_and_change_listeners() -> None:
    tools = ToolSet()
    changes: list[int] = []
    tools.on_change(lambda: changes.append(len(tools)))
    tools.add(_extra_tool())
    assert tools.remove("extra").name == "extra"
    assert changes == [1, 0]
    with pytest.raises(KeyError):
        tools.remove("extra")


# -- required client capabilities ---------------------------------------------------------------


def _needy() -> ToolSet:
    tools = make_tools()
    tools.add(Tool.from_function(lambda: "ok", name="needy", requires={"sampling": {}}))
    return tools


def test_undeclared_capability_is_32021_400_in_the_stateless_era() -> None:
    endpoint = make_endpoint(tools=_needy())
    params = {"name": "needy", "arguments": {}, "_meta": _meta()}
    reply = _post(endpoint, "tools/call", params, id=401)
    assert isinstance(reply, Reply)
    assert reply.status == 400
    body = body_json(reply)
    assert body["id"] == 401
    assert body["error"]["code"] == MISSING_REQUIRED_CLIENT_CAPABILITY
    assert body["error"]["data"] == {"requiredCapabilities": {"sampling": {}}}


def test_declared_capability_runs_the_tool() -> None:
    endpoint = make_endpoint(tools=_needy())
    params = {"name": "needy", "arguments": {}, "_meta": _meta({"sampling": {}})}
    assert isinstance(_post(endpoint, "tools/call", params), StartCall)


def test_handshake_era_uses_the_capabilities_from_initialize() -> None:
    endpoint = make_endpoint(tools=_needy())
    client = Client(endpoint)
    client.initialize()  # declares no capabilities
    reply = client.call("needy")
    assert isinstance(reply, Reply)
    assert reply.status == 200  # a JSON-RPC error; the status is the stateless era's rule
    assert body_json(reply)["error"]["code"] == MISSING_REQUIRED_CLIENT_CAPABILITY


def test_requires_is_data_for_the_core() -> None:
    tool = Tool.from_function(lambda: 1, name="t", requires={"elicitation": {}, "roots": {}})
    assert tool.missing_capabilities({"roots": {}}) == {"elicitation": {}}
    assert tool.missing_capabilities(None) == {"elicitation": {}, "roots": {}}
    with pytest.raises(LocalProtocolError):
        Tool.from_function(lambda: 1, name="bad name")
