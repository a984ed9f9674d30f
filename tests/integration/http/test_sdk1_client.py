"""The official MCP Python SDK 1.x client against flowkit (handshake era).

Most deployed clients are still on the 1.x line. It cannot be installed next
to the 2.x dev dependency, so this test keeps a separate virtual environment
under ``.cache/mcp1`` (created on first use from PyPI) and runs a small 1.x
client script there against a real flowkit server on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from flowkit_http import create_app

from ._serving import serving
from ._tools import make_server
from .test_live_resource import URI as LIVE_URI
from .test_live_resource import make_server as make_live_server
from .test_sdk_resources import make_server as make_feature_server

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".cache" / "mcp1"
SDK1 = "mcp==1.30.0"
CLIENT = Path(__file__).parent / "sdk1" / "client.py"


@pytest.fixture(scope="module")
def sdk1_python() -> Path:
    python = VENV / "bin" / "python"
    stamp = VENV / f".installed-{SDK1}"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", SDK1],
            check=True,
            timeout=600,
        )
        stamp.touch()
    return python


async def test_sdk1_client_initializes_lists_and_calls_with_progress(sdk1_python: Path) -> None:
    server, _ = make_server()
    with trio.fail_after(120):
        async with serving(create_app(server)) as url:
            done = await trio.run_process(
                [str(sdk1_python), str(CLIENT), url + "/mcp"], capture_stdout=True
            )
    seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert seen["protocol"] == "2025-11-25"  # 1.30 asks for the latest handshake revision
    assert seen["tools"][:3] == ["ticker", "analyze_document", "sensor_feed"]
    assert seen["structured"] == {"count": 20}
    assert seen["progress"] == [float(i) for i in range(1, 21)]
    assert seen["boom_is_error"] is True


async def test_sdk1_client_reads_resources_gets_prompts_and_completes(sdk1_python: Path) -> None:
    with trio.fail_after(120):
        async with serving(create_app(make_feature_server())) as url:
            done = await trio.run_process(
                [str(sdk1_python), str(CLIENT.with_name("features.py")), url + "/mcp"],
                capture_stdout=True,
            )
    seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert seen["capabilities"]["resources"] == {"subscribe": True, "listChanged": False}
    assert seen["capabilities"]["prompts"] == {"listChanged": False}
    assert seen["resources"] == ["memo://today", "memo://logo", "memo://broken"]
    assert seen["templates"] == ["memo://days/{day}"]
    assert seen["text"] == "buy coffee!"
    assert seen["templated"] == "memo of mon"
    assert seen["missing"] == -32002
    assert seen["prompt"] == "Reply to 'hi' in a friendly tone."
    assert seen["completed"] == ["mon"]
    assert seen["prompt_completed"] == ["funny"]


async def test_sdk1_client_subscribes_to_a_live_resource_and_reads_the_newest(
    sdk1_python: Path,
) -> None:
    with trio.fail_after(120):
        async with serving(create_app(make_live_server())) as url:
            done = await trio.run_process(
                [str(sdk1_python), str(CLIENT.with_name("live.py")), url + "/mcp", LIVE_URI],
                capture_stdout=True,
            )
    seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert seen["first"] == {"celsius": 20.0}
    assert seen["updates"] == [LIVE_URI]
    # The read after the update returns the newest item published, not an older one.
    assert seen["newest"] == {"celsius": seen["published"]}
