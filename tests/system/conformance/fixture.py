"""The fixture server the official MCP conformance suite runs against.

Serve it from the repository root with::

    flowkit serve tests.system.conformance.fixture:app --port 8123

and point the suite at ``http://127.0.0.1:8123/mcp``. Each tool is named and
shaped after what a scenario of ``@modelcontextprotocol/conformance`` calls
(``src/scenarios/server/*.ts``); the docstrings say which. Everything is
written against flowkit's public API: the tools are ordinary flowkit tools
(async generators yielding progress steps and logs, or plain results), so a
scenario that passes here passes for any flowkit server built the same way.
"""

from __future__ import annotations

import io
import json
import struct
import wave
import zlib
from collections.abc import AsyncIterator
from typing import Any

import trio

from flowkit.mcp import (
    ElicitResult,
    EndpointConfig,
    Tool,
    ToolContext,
    audio_content,
    elicitation_request,
    embedded_resource,
    image_content,
    roots_request,
    sampling_request,
    text_content,
    tool_result,
)
from flowkit_http import CloseStream, MCPServer, Partial, Progress, Result

__all__ = ["app"]

app = MCPServer(
    "flowkit-conformance-fixture",
    version="1.0.0",
    instructions="Fixture tools for the MCP conformance suite.",
    # Advertise tools.listChanged: test_trigger_tool_change changes the list, and
    # subscriptions/listen (2026-07-28) and the GET stream (2025-11-25) carry it.
    config=EndpointConfig(tools_list_changed=True),
)


def _png_1x1_red() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _wav_silence() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 80)  # 10 ms of 8-bit silence
    return buffer.getvalue()


PNG = _png_1x1_red()
WAV = _wav_silence()


# -- content types (tools-call-simple-text, -image, -audio, -embedded-resource, -mixed-content)


@app.tool
def test_simple_text() -> str:
    """Returns a simple text response (tools-call-simple-text)."""
    return "This is a simple text response for testing."


@app.tool
def test_image_content() -> dict[str, Any]:
    """Returns a 1x1 red PNG image (tools-call-image)."""
    return tool_result([image_content(PNG, "image/png")])


@app.tool
def test_audio_content() -> dict[str, Any]:
    """Returns a short WAV clip (tools-call-audio)."""
    return tool_result([audio_content(WAV, "audio/wav")])


@app.tool
def test_embedded_resource() -> dict[str, Any]:
    """Returns an embedded text resource (tools-call-embedded-resource)."""
    resource = embedded_resource(
        "test://embedded-resource",
        text="This is an embedded resource content.",
        mime_type="text/plain",
    )
    return tool_result([resource])


@app.tool
def test_multiple_content_types() -> dict[str, Any]:
    """Returns text, an image and an embedded resource (tools-call-mixed-content)."""
    return tool_result(
        [
            text_content("Multiple content types test:"),
            image_content(PNG, "image/png"),
            embedded_resource(
                "test://mixed-content-resource",
                text='{"test":"data","value":123}',
                mime_type="application/json",
            ),
        ]
    )


# -- logging, errors, progress -------------------------------------------------------


@app.tool
async def test_tool_with_logging() -> AsyncIterator[Any]:
    """Sends three info logs ~50 ms apart while it runs (tools-call-with-logging)."""
    yield Partial("Tool execution started", level="info")
    await trio.sleep(0.05)
    yield Partial("Tool processing data", level="info")
    await trio.sleep(0.05)
    yield Partial("Tool execution completed", level="info")


@app.tool
async def test_logging_tool() -> AsyncIterator[Any]:
    """Logs while it runs; a request without a logLevel must see none (server-stateless)."""
    yield Partial("logging tool started", level="info")
    yield Partial("logging tool finished", level="warning")


@app.tool
def test_error_handling() -> None:
    """Always fails; the failure is an isError result (tools-call-error)."""
    raise RuntimeError("This tool intentionally returns an error for testing")


@app.tool
async def test_tool_with_progress() -> AsyncIterator[Any]:
    """Reports progress 0, 50 and 100 of 100, ~50 ms apart (tools-call-with-progress)."""
    yield Progress("started", total=100, progress=0)
    await trio.sleep(0.05)
    yield Progress("halfway", progress=50)
    await trio.sleep(0.05)
    yield Progress("done", progress=100)
    yield Result(text="Progress test completed: 0, 50, 100 of 100")


# -- SSE polling (server-sse-polling, SEP-1699) ----------------------------------------------


@app.tool
async def test_reconnection() -> AsyncIterator[Any]:
    """Closes its response stream mid-call; the result comes after the client reconnects.

    The priming event carried an id and ``retry``; after :class:`CloseStream`
    the client reconnects with GET + ``Last-Event-ID`` and gets the rest
    (server-sse-polling). The pause after the close lets the reconnection
    find the call still running, so the live path is exercised, not only the
    replay of a finished call.
    """
    await trio.sleep(0.05)
    yield Progress("before the close")
    yield CloseStream()
    await trio.sleep(0.2)
    yield Progress("after the close")
    yield Result(text="Reconnection test completed")


# -- client capabilities (server-stateless) --------------------------------------------


def test_missing_capability() -> str:
    """Needs the client's sampling capability: undeclared, it is refused with -32021."""
    return "The client declared sampling; flowkit tools never sample, so nothing more happens."


async def test_streaming_elicitation() -> AsyncIterator[Any]:
    """Needs elicitation; streams progress and a result, never a server request."""
    yield Progress("working", total=2)
    yield Progress("finishing", total=2)


app.tools.add(Tool.from_function(test_missing_capability, requires={"sampling": {}}))
app.tools.add(Tool.from_function(test_streaming_elicitation, requires={"elicitation": {}}))


# -- tool list changes (server-stateless subscriptions, GET stream) -----------------------


def _dynamic_tool() -> str:
    return "I come and go."


@app.tool
def test_trigger_tool_change() -> str:
    """Adds or removes the tool ``dynamic_tool``, so the tool list changes."""
    if "dynamic_tool" in app.tools:
        app.tools.remove("dynamic_tool")
        return "removed dynamic_tool"
    app.tools.add(
        Tool.from_function(_dynamic_tool, name="dynamic_tool", description="Comes and goes.")
    )
    return "added dynamic_tool"


# -- headers (http-custom-header-server-validation) -----------------------------------------


@app.tool(
    input_schema={
        "type": "object",
        "properties": {
            "region": {
                "type": "string",
                "description": "Mirrored into the Mcp-Param-Region header.",
                "x-mcp-header": "Region",
            },
        },
        "required": ["region"],
        "additionalProperties": False,
    }
)
def test_header_param(region: str) -> str:
    """Echoes an argument the client mirrors into an Mcp-Param-Region header."""
    return f"region: {region}"


# -- JSON Schema 2020-12 (json-schema-2020-12) --------------------------------------------

JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@app.tool(input_schema=JSON_SCHEMA_2020_12)
def json_schema_2020_12_tool(**arguments: Any) -> dict[str, Any]:
    """Tool with JSON Schema 2020-12 features."""
    return tool_result(structured={"received": arguments})


# -- resources (resources-list, -read-text, -read-binary, -templates-read, -subscribe,
# -unsubscribe, sep-2164-resource-not-found, caching) ---------------------------------------


@app.resource("test://static-text", name="static-text", mime_type="text/plain")
def static_text() -> str:
    """A static text resource (resources-read-text)."""
    return "This is the content of the static text resource."


@app.resource("test://static-binary", name="static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A static binary resource, a 1x1 PNG (resources-read-binary)."""
    return PNG


@app.resource("test://watched-resource", name="watched-resource", mime_type="text/plain")
def watched_resource() -> str:
    """A resource clients subscribe to (resources-subscribe, -unsubscribe)."""
    return "Watched resource content."


@app.resource(
    "test://template/{id}/data",
    name="template-data",
    mime_type="application/json",
    complete={"id": ["123", "456", "789"]},
)
def template_data(id: str) -> dict[str, Any]:
    """Data for an id; the id is substituted into the content (resources-templates-read)."""
    return {"id": id, "templateTest": True, "data": f"Data for ID: {id}"}


# -- prompts (prompts-list, -get-simple, -get-with-args, -get-embedded-resource,
# -get-with-image) and completion (completion-complete) ------------------------------------


@app.prompt()
def test_simple_prompt() -> str:
    """A simple prompt without arguments (prompts-get-simple)."""
    return "This is a simple prompt for testing."


@app.prompt(complete={"arg1": ["testValue1", "test", "other"]})
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    """A prompt with two required arguments, substituted into it (prompts-get-with-args)."""
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@app.prompt()
def test_prompt_with_embedded_resource(resourceUri: str) -> list[Any]:
    """A prompt embedding a resource (prompts-get-embedded-resource)."""
    return [
        embedded_resource(
            resourceUri, text="Embedded resource content for testing.", mime_type="text/plain"
        ),
        "Please process the embedded resource above.",
    ]


@app.prompt()
def test_prompt_with_image() -> list[Any]:
    """A prompt with an image (prompts-get-with-image)."""
    return [image_content(PNG, "image/png"), "Please analyze the image above."]


# -- asking the client, 2025-11-25 (tools-call-sampling, tools-call-elicitation,
# elicitation-sep1034-defaults, elicitation-sep1330-enums): requests on the call's stream --

CONTACT = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}


def _elicited(answer: ElicitResult) -> str:
    return f"action={answer.action}, content={json.dumps(answer.content)}"


@app.tool
async def test_sampling(prompt: str, ctx: ToolContext) -> str:
    """Asks the client's LLM (tools-call-sampling); no sampling capability is an error."""
    result = await ctx.sample(prompt, max_tokens=100)
    return f"LLM response: {result.text}"


@app.tool
async def test_elicitation(message: str, ctx: ToolContext) -> str:
    """Asks the user for a username and an email (tools-call-elicitation)."""
    return f"User response: {_elicited(await ctx.elicit(message, CONTACT))}"


@app.tool
async def test_elicitation_sep1034_defaults(ctx: ToolContext) -> str:
    """A default for every primitive type (elicitation-sep1034-defaults)."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {
                "type": "string",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": {"type": "boolean", "default": True},
        },
    }
    answer = await ctx.elicit("Please review your profile", schema)
    return f"Elicitation completed: {_elicited(answer)}"


@app.tool
async def test_elicitation_sep1330_enums(ctx: ToolContext) -> str:
    """All five enum variants (elicitation-sep1330-enums)."""
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {
                "type": "string",
                "oneOf": [
                    {"const": "value1", "title": "First Option"},
                    {"const": "value2", "title": "Second Option"},
                    {"const": "value3", "title": "Third Option"},
                ],
            },
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {
                "type": "array",
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
            },
            "titledMulti": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"const": "value1", "title": "First Choice"},
                        {"const": "value2", "title": "Second Choice"},
                        {"const": "value3", "title": "Third Choice"},
                    ]
                },
            },
        },
    }
    answer = await ctx.elicit("Please make your choices", schema)
    return f"Elicitation completed: {_elicited(answer)}"


# -- 2026-07-28 input-required results (input-required-result-*, SEP-2322): the same
# ToolContext; each question not yet answered ends the call, the retry replays the rest --

NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CONFIRM = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
CAPITAL = "What is the capital of France?"


def _content(answer: ElicitResult, field: str) -> Any:
    return (answer.content or {}).get(field)


@app.tool
async def test_input_required_result_elicitation(ctx: ToolContext) -> str:
    """One elicitation under the key "user_name" (basic, result-type, missing, extra, validate)."""
    answer = await ctx.elicit("What is your name?", NAME, key="user_name")
    return f"Hello, {_content(answer, 'name')}!"


@app.tool
async def test_input_required_result_sampling(ctx: ToolContext) -> str:
    """One sampling request (input-required-result-basic-sampling)."""
    result = await ctx.sample(CAPITAL, max_tokens=100, key="capital_question")
    return result.text


@app.tool
async def test_input_required_result_list_roots(ctx: ToolContext) -> str:
    """One roots/list (input-required-result-basic-list-roots)."""
    roots = await ctx.list_roots(key="client_roots")
    return "Roots: " + ", ".join(root.uri for root in roots)


@app.tool
async def test_input_required_result_request_state(ctx: ToolContext) -> str:
    """A sealed requestState round trip (input-required-result-request-state)."""
    answer = await ctx.elicit("Please confirm", CONFIRM, key="confirm")
    return f"state-ok: round {ctx.round}, confirmed={_content(answer, 'ok')}"


@app.tool
async def test_input_required_result_multiple_inputs(ctx: ToolContext) -> str:
    """Three requests in one round (input-required-result-multiple-input-requests)."""
    name, greeting, roots = await ctx.ask(
        elicitation_request("What is your name?", NAME, key="user_name"),
        sampling_request("Generate a greeting", max_tokens=50, key="greeting"),
        roots_request(key="client_roots"),
    )
    return f"{greeting.text} {_content(name, 'name')} ({len(roots)} roots)"


@app.tool
async def test_input_required_result_multi_round(ctx: ToolContext) -> str:
    """Two rounds, the state evolving (input-required-result-multi-round)."""
    name = await ctx.elicit("Step 1: What is your name?", NAME, key="step1")
    colour_schema = {
        "type": "object",
        "properties": {"color": {"type": "string"}},
        "required": ["color"],
    }
    colour = await ctx.elicit("Step 2: What is your favorite color?", colour_schema, key="step2")
    return f"{_content(name, 'name')} likes {_content(colour, 'color')}"


@app.tool
async def test_input_required_result_tampered_state(ctx: ToolContext) -> str:
    """Its requestState is sealed; a tampered one is -32602 (input-required-result-tampered-state)."""
    await ctx.elicit("Please confirm", CONFIRM, key="confirm")
    return "confirmed"


@app.tool
async def test_input_required_result_capabilities(ctx: ToolContext) -> str:
    """Asks only what the client declared (input-required-result-capability-check)."""
    asks = []
    if ctx.supports("elicitation"):
        asks.append(elicitation_request("What is your name?", NAME, key="user_name"))
    if ctx.supports("sampling"):
        asks.append(sampling_request(CAPITAL, max_tokens=100, key="capital_question"))
    if ctx.supports("roots"):
        asks.append(roots_request(key="client_roots"))
    await ctx.ask(*asks)
    return f"asked {len(asks)} things"


@app.prompt()
async def test_input_required_result_prompt(ctx: ToolContext) -> str:
    """A prompt that needs the user's context first (input-required-result-non-tool-request)."""
    schema = {
        "type": "object",
        "properties": {"context": {"type": "string"}},
        "required": ["context"],
    }
    answer = await ctx.elicit("What context should the prompt use?", schema, key="user_context")
    return f"Use this context: {_content(answer, 'context')}"
