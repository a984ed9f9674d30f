"""Resources and templates: listing, reading, not-found, subscriptions (both eras).

Spec: 2025-11-25 and 2026-07-28 ``server/resources`` ("Listing Resources",
"Reading Resources", "Resource Templates", "Subscriptions", "Error
Handling"), 2026-07-28 ``server/utilities/caching`` ("Cacheable Results").
"""

from __future__ import annotations

import base64

import pytest

from flowkit.mcp import (
    EndpointConfig,
    Invoke,
    LocalProtocolError,
    OpenListenStream,
    Reply,
    Resource,
    ResourceSet,
    ResourceTemplate,
)

from ._client import Client, body_json, sse_data
from ._features import (
    PNG,
    legacy_client,
    make_feature_endpoint,
    make_resources,
    modern_request,
    run,
)


def _open_get(client: Client) -> None:
    """Open the session's GET stream as the adapter does."""
    action = client.get()
    assert isinstance(action, OpenListenStream)
    action.stream.open()


def test_resources_list_publishes_uri_name_mime_type_size_annotations() -> None:
    client = legacy_client(make_feature_endpoint())
    result = run(client.request("resources/list"))["result"]
    assert result["resources"][0] == {
        "uri": "test://text",
        "name": "text",
        "description": "Some text.",
        "mimeType": "text/plain",
        "size": 5,
        "annotations": {"audience": ["user"], "priority": 0.5},
    }
    assert [r["uri"] for r in result["resources"]] == [
        "test://text",
        "test://blob",
        "test://json",
        "test://broken",
    ]
    assert "nextCursor" not in result
    assert "ttlMs" not in result


def test_templates_list_publishes_uri_templates() -> None:
    client = legacy_client(make_feature_endpoint())
    templates = run(client.request("resources/templates/list"))["result"]["resourceTemplates"]
    assert templates == [
        {
            "uriTemplate": "users://{user}/posts/{post}",
            "name": "post",
            "description": "A post of a user.",
            "mimeType": "text/plain",
        },
        {"uriTemplate": "files:///{+path}", "name": "file"},
    ]


def test_lists_page_with_cursors_and_refuse_foreign_ones() -> None:
    endpoint = make_feature_endpoint(EndpointConfig(page_size=3))
    client = legacy_client(endpoint)
    first = run(client.request("resources/list"))["result"]
    second = run(client.request("resources/list", {"cursor": first["nextCursor"]}))["result"]
    assert [r["uri"] for r in first["resources"] + second["resources"]] == [
        r.uri for r in endpoint.resources.resources
    ]
    assert "nextCursor" not in second
    # A tools/list cursor (or a made-up one) is not a resources/list cursor: -32602.
    endpoint.tools.tool(lambda: None, name="t2")
    endpoint.tools.tool(lambda: None, name="t3")
    tools_cursor = run(client.request("tools/list"))["result"]["nextCursor"]
    for cursor in (tools_cursor, "bm9wZQ==", 7):
        reply = client.request("resources/list", {"cursor": cursor})
        assert isinstance(reply, Reply)
        assert body_json(reply)["error"]["code"] == -32602


def test_read_text_blob_and_json() -> None:
    client = legacy_client(make_feature_endpoint())
    text = run(client.request("resources/read", {"uri": "test://text"}))["result"]
    assert text == {"contents": [{"uri": "test://text", "mimeType": "text/plain", "text": "hello"}]}
    blob = run(client.request("resources/read", {"uri": "test://blob"}))["result"]["contents"][0]
    assert blob["mimeType"] == "image/png"
    assert base64.b64decode(blob["blob"]) == PNG
    value = run(client.request("resources/read", {"uri": "test://json"}))["result"]["contents"][0]
    assert value == {"uri": "test://json", "mimeType": "application/json", "text": '{"a":1}'}


def test_read_of_a_template_passes_decoded_variables() -> None:
    client = legacy_client(make_feature_endpoint())
    action = client.request("resources/read", {"uri": "users://al%20ice/posts/7"})
    assert isinstance(action, Invoke)
    contents = run(action)["result"]["contents"]
    assert contents == [
        {"uri": "users://al%20ice/posts/7", "mimeType": "text/plain", "text": "post 7 of al ice"}
    ]
    # {+path} spans slashes; {user} does not.
    nested = run(client.request("resources/read", {"uri": "files:///a/b/c.txt"}))
    assert nested["result"]["contents"][0]["text"] == "file at a/b/c.txt"
    missing = run(client.request("resources/read", {"uri": "users://a/b/posts/7"}))
    assert missing["error"]["code"] == -32002


@pytest.mark.parametrize("uri", ["test://nothing", "users://nobody/posts/1"])
def test_not_found_is_32002_in_2025_and_32602_in_2026_with_the_uri(uri: str) -> None:
    """SEP-2164: never an empty contents; -32602 since 2026-07-28, -32002 before."""
    endpoint = make_feature_endpoint()
    legacy = run(legacy_client(endpoint).request("resources/read", {"uri": uri}))
    assert legacy["error"] == {
        "code": -32002,
        "message": "Resource not found",
        "data": {"uri": uri},
    }
    modern = run(modern_request(endpoint, "resources/read", {"uri": uri}, name=uri))
    assert modern["error"] == {
        "code": -32602,
        "message": "Resource not found",
        "data": {"uri": uri},
    }


def test_a_failing_reader_is_an_internal_error_that_names_only_the_method() -> None:
    client = legacy_client(make_feature_endpoint())
    error = run(client.request("resources/read", {"uri": "test://broken"}))["error"]
    assert error["code"] == -32603
    assert "password" not in error["message"]
    assert "resources/read" in error["message"]


def test_a_reader_returning_what_cannot_be_sent_is_an_internal_error() -> None:
    resources = ResourceSet()
    resources.resource("test://set")(lambda: {1, 2})
    endpoint = make_feature_endpoint()
    endpoint.state.resources = resources
    error = run(legacy_client(endpoint).request("resources/read", {"uri": "test://set"}))["error"]
    assert error["code"] == -32603
    assert "set" in error["message"]


def test_malformed_read_params_are_32602() -> None:
    client = legacy_client(make_feature_endpoint())
    for params in ({}, {"uri": 3}, {"uri": None}):
        reply = client.request("resources/read", params)
        assert isinstance(reply, Reply)
        assert body_json(reply)["error"]["code"] == -32602


def test_stateless_read_has_caching_hints_and_needs_a_matching_mcp_name() -> None:
    endpoint = make_feature_endpoint(EndpointConfig(cache_ttl_ms=5000, cache_scope="private"))
    result = run(modern_request(endpoint, "resources/read", {"uri": "test://text"}, "test://text"))
    assert result["result"]["resultType"] == "complete"
    assert (result["result"]["ttlMs"], result["result"]["cacheScope"]) == (5000, "private")
    for method in ("resources/list", "resources/templates/list"):
        listed = run(modern_request(endpoint, method, {}))["result"]
        assert (listed["ttlMs"], listed["cacheScope"], listed["resultType"]) == (
            5000,
            "private",
            "complete",
        )
    for name in (None, "test://other"):
        reply = modern_request(endpoint, "resources/read", {"uri": "test://text"}, name)
        assert isinstance(reply, Reply)
        assert (reply.status, body_json(reply)["error"]["code"]) == (400, -32020)


def test_a_resource_may_override_the_configured_ttl_of_its_reads() -> None:
    endpoint = make_feature_endpoint(EndpointConfig(cache_ttl_ms=60000))
    endpoint.state.resources.resource("test://clock", ttl_ms=0)(lambda: "12:00")
    endpoint.state.resources.resource("test://day/{day}", ttl_ms=250)(lambda day: day)
    ttls = [
        run(modern_request(endpoint, "resources/read", {"uri": uri}, uri))["result"]["ttlMs"]
        for uri in ("test://clock", "test://day/mon", "test://text")
    ]
    assert ttls == [0, 250, 60000]
    legacy = run(legacy_client(endpoint).request("resources/read", {"uri": "test://clock"}))
    assert "ttlMs" not in legacy["result"]  # no caching hints before 2026-07-28
    for bad in (-1, 1.5, True):
        with pytest.raises(LocalProtocolError, match="ttl_ms must be an int"):
            ResourceSet().resource("test://x", ttl_ms=bad)(lambda: "x")  # type: ignore[arg-type]


def test_capabilities_announce_resources_only_when_declared() -> None:
    bare = make_feature_endpoint()
    bare.state.resources = ResourceSet()
    bare.state.prompts.remove("greet")
    bare.state.prompts.remove("review")
    caps = body_json(Client(bare).initialize())["result"]["capabilities"]
    assert set(caps) == {"tools", "logging"}
    endpoint = make_feature_endpoint(EndpointConfig(resources_list_changed=True))
    caps = body_json(Client(endpoint).initialize())["result"]["capabilities"]
    assert caps["resources"] == {"subscribe": True, "listChanged": True}
    assert caps["completions"] == {}
    discovered = run(modern_request(endpoint, "server/discover", {}))["result"]["capabilities"]
    assert discovered["resources"] == {"subscribe": True, "listChanged": True}


def test_subscribe_then_updated_goes_to_the_get_stream_until_unsubscribe() -> None:
    endpoint = make_feature_endpoint()
    client = legacy_client(endpoint)
    other = legacy_client(endpoint)
    for c in (client, other):
        _open_get(c)
    assert run(client.request("resources/subscribe", {"uri": "test://text"}))["result"] == {}
    assert endpoint.resource_updated("test://blob") == ()
    [(stream, data)] = endpoint.resource_updated("test://text")
    assert stream.session_id == client.session_id
    assert sse_data(data) == {
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {"uri": "test://text"},
    }
    assert run(client.request("resources/unsubscribe", {"uri": "test://text"}))["result"] == {}
    assert endpoint.resource_updated("test://text") == ()
    unknown = run(client.request("resources/subscribe", {"uri": "test://nothing"}))
    assert unknown["error"]["code"] == -32002


def test_stateless_era_has_no_resources_subscribe() -> None:
    reply = modern_request(make_feature_endpoint(), "resources/subscribe", {"uri": "test://text"})
    assert isinstance(reply, Reply)
    assert (reply.status, body_json(reply)["error"]["code"]) == (404, -32601)


def test_listen_resource_subscriptions_are_acknowledged_and_updated() -> None:
    endpoint = make_feature_endpoint(EndpointConfig(resources_list_changed=True))
    wanted = {"resourceSubscriptions": ["test://text"], "resourcesListChanged": True}
    action = modern_request(endpoint, "subscriptions/listen", {"notifications": wanted})
    assert isinstance(action, OpenListenStream)
    _, _, first = action.stream.open()
    ack = sse_data(first)["params"]
    assert ack["notifications"] == wanted
    [(_, data)] = endpoint.resource_updated("test://text")
    update = sse_data(data)["params"]
    assert update == {"uri": "test://text", "_meta": {"io.modelcontextprotocol/subscriptionId": 1}}
    [(_, changed)] = endpoint.list_changed("resources")
    assert sse_data(changed)["method"] == "notifications/resources/list_changed"
    bad = modern_request(
        endpoint, "subscriptions/listen", {"notifications": {"resourceSubscriptions": "x"}}
    )
    assert isinstance(bad, Reply)
    assert body_json(bad)["error"]["code"] == -32602


def test_list_changed_for_resources_needs_the_config_flag() -> None:
    endpoint = make_feature_endpoint()
    _open_get(legacy_client(endpoint))
    assert endpoint.list_changed("resources") == ()
    flagged = make_feature_endpoint(EndpointConfig(resources_list_changed=True))
    _open_get(legacy_client(flagged))
    [(_, data)] = flagged.list_changed("resources")
    assert sse_data(data)["method"] == "notifications/resources/list_changed"


def test_resource_set_notifies_changes_and_updates() -> None:
    resources = make_resources()
    changes: list[str] = []
    resources.on_change(lambda: changes.append("list"))
    resources.on_update(changes.append)
    resources.remove("test://json")
    resources.updated("test://text")
    assert changes == ["list", "test://text"]
    with pytest.raises(LocalProtocolError, match="duplicate"):
        resources.resource("test://text")(lambda: "again")


def test_declaration_errors_are_specific() -> None:
    with pytest.raises(LocalProtocolError, match="absolute URI"):
        Resource("relative/path", "x", lambda: "")
    with pytest.raises(LocalProtocolError, match="takes no arguments"):
        Resource("test://x", "x", lambda day: "")
    with pytest.raises(LocalProtocolError, match="exactly its variables"):
        ResourceTemplate("test://{day}", "x", lambda month: "")
    with pytest.raises(LocalProtocolError, match="distinct"):
        ResourceTemplate("test://{a}/{a}", "x", lambda a: "")
    with pytest.raises(LocalProtocolError, match="no variable"):
        ResourceSet().resource("test://{a}", complete={"b": ["x"]})(lambda a: "")
