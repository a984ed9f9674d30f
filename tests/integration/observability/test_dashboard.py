"""Issue 14, item 3: the dashboard in headless Chromium, updating while calls run.

Debian's chromium (installed via ``.ci/debian.sh``) is driven by playwright's
sync API in a subprocess (``_browser.py``). The page must go live, show a
running call while it runs, then count every ended call and show the tools,
the pipeline stages and the failed calls. The feed's conflation is checked
on trio's MockClock: a reader that stops reading costs one observation.

Set ``FLOWKIT_DASHBOARD_SCREENSHOT=docs/observability-dashboard.png`` to
refresh the screenshot in the docs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from flowkit_http import MCPServer
from flowkit_http._asgi import MCPApp
from flowkit_http._dashboard import open_feed
from tests.integration.http._raw import call, initialize, raw_request

from ..._system import read_until
from ._processes import ROOT, flowkit_serve, free_port, process

# (tool, arguments, how many calls)
CALLS = [
    ("ticker", {"count": 60, "interval_ms": 50}, 1),  # runs ~3 s: seen as active
    ("sensor_feed", {"readings": 3000, "consume_ms": 0.2}, 3),
    ("boom", {"after": 1}, 2),
    ("ticker", {"count": 3}, 4),
]
TOTAL = sum(n for _tool, _args, n in CALLS)


async def _rest(stream: trio.abc.ReceiveStream) -> bytes:
    """Read ``stream`` to its end (what the browser script printed)."""
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def test_the_dashboard_updates_in_chromium_while_calls_run(
    chromium_binary: str, tmp_path: Path
) -> None:
    screenshot = os.environ.get("FLOWKIT_DASHBOARD_SCREENSHOT") or str(tmp_path / "dash.png")
    async with (
        flowkit_serve("tests.integration.observability._served:server") as base,
        httpx.AsyncClient(timeout=60) as client,
    ):
        browser = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "tests.integration.observability._browser",
                chromium_binary,
                f"{base}/dashboard",
                str(TOTAL),
                screenshot,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            seen = await read_until(browser, b"READY", 90)
            headers = await initialize(client, f"{base}/mcp")
            ids = iter(range(1, 1000))

            async def one(tool: str, arguments: dict[str, object]) -> None:
                response = await client.post(
                    f"{base}/mcp", content=call(next(ids), tool, arguments), headers=headers
                )
                assert b'"result"' in response.content

            with trio.fail_after(90):
                async with trio.open_nursery() as nursery:
                    for tool, arguments, count in CALLS:
                        for _ in range(count):
                            nursery.start_soon(one, tool, arguments)
                lines = (seen + await _rest(browser.stdout)).decode().splitlines()
                await browser.wait()
        finally:
            if browser.returncode is None:
                browser.kill()
                await browser.wait()
    assert browser.returncode == 0, "\n".join(lines)
    assert lines[0] == "READY 0", lines
    assert any(line.startswith("ACTIVE ") for line in lines), lines
    shown = json.loads(lines[-1])
    assert shown["calls-total"] == str(TOTAL)
    assert shown["sessions"] == "1"
    for tool in ("ticker", "sensor_feed", "boom"):
        assert tool in shown["tools"]
    assert "drop_oldest" in shown["stages"]
    assert "adaptive_batch" in shown["stages"]
    assert "RuntimeError" in shown["errors"]
    assert "boom" in shown["errors"]
    # Never arguments or results: the boom tool's message is not on the page.
    assert "caught fire" not in json.dumps(shown)
    image = await trio.Path(screenshot).read_bytes()
    assert image.startswith(b"\x89PNG")
    assert len(image) > 10_000


async def test_a_reader_that_stops_reading_costs_one_observation(autojump_clock: object) -> None:
    """The feed's ``latest`` keeps only the newest observation while the reader is away.

    What it holds stays at most three observations however long the tab sleeps.
    """
    app = MCPApp(MCPServer())
    async with app.running(), open_feed(app, interval=1.0) as feed:
        first = await feed.receive()
        assert first.startswith(b"data: {")
        await trio.sleep(60)  # a background tab: 60 observations made, none read
        (latest,) = [s for s in feed.statistics() if s.name == "dashboard"]
        assert latest.items_in >= 59  # the observations kept coming
        assert latest.buffered <= 1
        # Not dropped: the one read, one in the output hop, the one held.
        assert latest.items_in - latest.dropped <= 3
        # Back in the foreground: the one waiting in the hop, then the newest.
        waited, newest = await feed.receive(), await feed.receive()
        assert json.loads(waited[6:])["at"] < json.loads(newest[6:])["at"]
        assert json.loads(newest[6:])["at"] >= json.loads(first[6:])["at"] + 59


async def test_sigterm_ends_open_dashboard_feeds_cleanly_and_at_once() -> None:
    """Shutdown ends the feeds like the MCP streams, not after the graceful timeout."""
    grace = 10.0
    port = free_port()
    command = [sys.executable, "-m", "flowkit_http", "serve", "--demo"]
    command += ["--port", str(port), "--graceful-timeout", str(grace)]
    base = f"http://127.0.0.1:{port}"
    ended_after: list[float] = []
    async with process(command, ready=b"serving MCP at", cwd=ROOT) as output:
        opened = trio.Semaphore(0)
        signalled_at: list[float] = []

        async def hold() -> None:
            async with raw_request(base, "GET", "/dashboard/events", {}) as response:
                assert response.status == 200
                await response.read(stop=1)
                opened.release()
                _, ended = await response.read()  # ConnectionError if reset
                assert ended
                ended_after.append(trio.current_time() - signalled_at[0])

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(hold)
                for _ in range(3):
                    await opened.acquire()
                signalled_at.append(trio.current_time())
                output.signal(signal.SIGTERM)
            code = await output.wait()
    assert code == 0, output.text()
    assert len(ended_after) == 3
    assert max(ended_after) < grace / 2, ended_after
    assert "Traceback" not in output.text()
