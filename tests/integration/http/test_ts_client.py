"""The official MCP TypeScript SDK client against flowkit: resources, a live resource, prompts.

The SDK comes with the conformance suite's Node tree (``.cache/node``, which
``tests/conformance/suite.py`` installs from the npm registry: the suite
depends on ``@modelcontextprotocol/sdk``), so this costs no extra install.
``ts/features.mjs`` lists and reads resources (text, a template, not-found),
gets a prompt (and a refused one), completes a template variable and a prompt
argument, and subscribes to a live resource: ``resources/updated`` on the GET
stream, then a read returning the newest item. Handshake era (the SDK's
Streamable HTTP client initializes).
"""

from __future__ import annotations

import json
from pathlib import Path

import trio

from flowkit_http import create_app

from ...system.conformance import suite
from ._serving import serving
from .test_live_resource import URI as LIVE_URI
from .test_live_resource import add_sensor
from .test_sdk_resources import make_server

SCRIPT = Path(__file__).parent / "ts" / "features.mjs"
SDK = suite.CACHE / "node_modules" / "@modelcontextprotocol" / "sdk"


async def test_the_typescript_sdk_client_reads_subscribes_prompts_and_completes() -> None:
    await trio.to_thread.run_sync(lambda: suite.ensure_installed(log=False))
    version = json.loads((SDK / "package.json").read_text())["version"]
    assert version.startswith("1."), version
    with trio.fail_after(120):
        async with serving(create_app(add_sensor(make_server()))) as url:
            done = await trio.run_process(
                [str(suite.node_binary()), str(SCRIPT), str(SDK / "dist" / "esm"), url + "/mcp"],
                capture_stdout=True,
            )
    seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert seen["capabilities"]["resources"] == {"subscribe": True, "listChanged": False}
    assert seen["capabilities"]["completions"] == {}
    assert seen["resources"] == ["memo://today", "memo://logo", "memo://broken", LIVE_URI]
    assert seen["templates"] == ["memo://days/{day}"]
    assert seen["text"] == "buy coffee!"
    assert seen["templated"] == "memo of tue"
    assert seen["missing"] == [-32002, {"uri": "memo://days/sun"}]
    assert seen["prompt"] == ["text", "image"]
    assert seen["promptText"] == "Reply to 'hi' in a formal tone."
    assert seen["promptError"] == -32602
    assert seen["completed"] == ["tue"]
    assert seen["promptCompleted"] == ["friendly", "formal", "funny"]
    assert seen["updates"] == [LIVE_URI]
    assert seen["newest"] == {"celsius": seen["published"]}
