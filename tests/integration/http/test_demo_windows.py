"""The demo's ``sensor_windows``: per-sensor windows streamed to the official SDK client."""

from __future__ import annotations

from typing import Any

import trio
from mcp import Client

from flowkit_http import MCPServer, create_app
from flowkit_http._demo import sensor_windows

from ._sdk import with_client
from ._serving import serving


def _server() -> MCPServer:
    server = MCPServer(name="test")
    server.tool(sensor_windows)
    return server


async def _call(arguments: dict[str, Any]) -> tuple[Any, list[Any], list[Any]]:
    logs: list[Any] = []
    progress: list[Any] = []

    async def on_log(params: Any) -> None:
        logs.append(params)

    async def body(client: Client) -> Any:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, message))

        return await client.call_tool("sensor_windows", arguments, progress_callback=on_progress)

    with trio.fail_after(30):
        async with serving(create_app(_server())) as url:
            result = await with_client(url + "/mcp", body, logging_callback=on_log)
    return result, logs, progress


async def test_tumbling_windows_per_sensor_arrive_as_partial_results() -> None:
    # every_ms == window_ms: tumbling, so each reading is in exactly one window
    result, logs, progress = await _call(
        {"sensors": 3, "readings": 60, "interval_ms": 5, "window_ms": 100, "every_ms": 100}
    )
    assert not result.is_error
    windows = [log.data for log in logs]
    assert {w["sensor"] for w in windows} == {"sensor-0", "sensor-1", "sensor-2"}
    assert sum(w["readings"] for w in windows) == 60  # every reading, once
    for sensor in ("sensor-0", "sensor-1", "sensor-2"):
        # the values are 20 + (i * 37) % 11 for the readings i of this sensor
        mine = [w for w in windows if w["sensor"] == sensor]
        assert sum(w["readings"] for w in mine) == 20
        values = [20 + (i * 37) % 11 for i in range(int(sensor[-1]), 60, 3)]
        assert abs(sum(w["mean"] * w["readings"] for w in mine) - sum(values)) < 0.05
        assert all(abs(w["end_ms"] - w["start_ms"] - 100) < 0.01 for w in mine)
    # only the windows still open at the end are partial
    assert not any(w["partial"] for w in windows[:-3])
    assert result.structured_content["windows"] == len(windows)
    assert set(result.structured_content["latest_mean"]) == {"sensor-0", "sensor-1", "sensor-2"}
    assert len(progress) == len(windows)  # one progress step per window, as it closed
    assert progress[0][1].startswith(windows[0]["sensor"] + ": mean ")


async def test_sliding_windows_overlap() -> None:
    result, logs, _ = await _call(
        {"sensors": 2, "readings": 40, "interval_ms": 5, "window_ms": 100, "every_ms": 50}
    )
    assert not result.is_error
    windows = [log.data for log in logs]
    # each reading lands in about two windows of 100 ms, one every 50 ms
    assert 40 < sum(w["readings"] for w in windows) <= 80
    assert all(abs(w["end_ms"] - w["start_ms"] - 100) < 0.01 for w in windows)


async def test_bad_window_settings_are_an_error_result() -> None:
    result, logs, _ = await _call({"window_ms": 100, "every_ms": 200})
    assert result.is_error
    assert "every_ms <= window_ms" in result.content[0].text
    assert logs == []
