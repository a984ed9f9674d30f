"""Shared by the resource, prompt and completion tests: a server with each, and two clients."""

from __future__ import annotations

import inspect
from typing import Any, Literal

import orjson

from flowkit.mcp import (
    Action,
    Endpoint,
    EndpointConfig,
    Invoke,
    PromptSet,
    Reply,
    ResourceSet,
    embedded_resource,
    image_content,
    prompt_message,
)

from ._client import Client, FakeClock, body_json, counter_ids, make_tools

MODERN = "2026-07-28"
PNG = b"\x89PNG\r\n\x1a\nfake"


def make_resources() -> ResourceSet:
    resources = ResourceSet()

    @resources.resource(
        "test://text",
        mime_type="text/plain",
        size=5,
        annotations={"audience": ["user"], "priority": 0.5},
    )
    def text() -> str:
        """Some text."""
        return "hello"

    @resources.resource("test://blob", mime_type="image/png")
    def blob() -> bytes:
        return PNG

    @resources.resource("test://json")
    async def json_value() -> dict[str, int]:
        return {"a": 1}

    @resources.resource("test://broken")
    def broken() -> str:
        raise RuntimeError("secret database password in this message")

    @resources.resource(
        "users://{user}/posts/{post}",
        mime_type="text/plain",
        complete={"user": ["alice", "albert", "bob"]},
    )
    def post(user: str, post: str) -> str:
        """A post of a user."""
        if user == "nobody":
            raise KeyError(user)
        return f"post {post} of {user}"

    @resources.resource("files:///{+path}")
    def file(path: str) -> str:
        return f"file at {path}"

    return resources


def make_prompts() -> PromptSet:
    prompts = PromptSet()

    @prompts.prompt()
    def greet() -> str:
        """Say hello."""
        return "Hello!"

    @prompts.prompt(complete={"language": lambda value, context: [f"{value}-{context}"]})
    def review(code: str, language: str = "python", style: Literal["short", "long"] = "short"):  # type: ignore[no-untyped-def]
        """Review code."""
        if code == "refuse":
            raise ValueError("code must not be 'refuse'")
        return [
            prompt_message(f"Review this {language} code ({style}):\n{code}"),
            prompt_message("Sure.", role="assistant"),
            image_content(PNG, "image/png"),
            embedded_resource("test://text", text="hello", mime_type="text/plain"),
        ]

    return prompts


def make_feature_endpoint(config: EndpointConfig | None = None) -> Endpoint:
    return Endpoint(
        config or EndpointConfig(),
        make_tools(),
        resources=make_resources(),
        prompts=make_prompts(),
        clock=FakeClock(),
        new_session_id=counter_ids(),
    )


def _run_coroutine(coroutine: Any) -> Any:
    """A coroutine that never suspends, run without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


def run(action: Action) -> Any:
    """Answer an action as an adapter would: run an Invoke's function, return the JSON."""
    if isinstance(action, Invoke):
        try:
            value = action.call()
            if inspect.iscoroutine(value):
                value = _run_coroutine(value)
        except Exception as exc:
            action = action.failed(exc)
        else:
            action = action.reply(value)
    assert isinstance(action, Reply), action
    assert action.status == 200, action
    return body_json(action)


def modern_request(
    endpoint: Endpoint, method: str, params: dict[str, Any], name: str | None = None
) -> Action:
    """A stateless-era request with its _meta and mirrored headers."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    headers = [
        (b"host", b"localhost:8000"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", MODERN.encode()),
        (b"mcp-method", method.encode()),
    ]
    if name is not None:
        headers.append((b"mcp-name", name.encode()))
    return endpoint.receive_request("POST", headers, orjson.dumps(message))


def legacy_client(endpoint: Endpoint) -> Client:
    client = Client(endpoint)
    client.initialize()
    return client
