"""Issue 12: apps made and stopped on one server leave no listener on its shared sets."""

from __future__ import annotations

from flowkit_http import MCPApp, MCPServer


def _counts(server: MCPServer) -> tuple[int, int, int, int]:
    return (
        len(server.tools._listeners),
        len(server.resources._on_change),
        len(server.resources._on_update),
        len(server.prompts._listeners),
    )


async def test_a_hundred_apps_started_and_stopped_leave_the_listener_counts_unchanged() -> None:
    server = MCPServer(name="shared")
    before = _counts(server)
    for _ in range(100):
        app = MCPApp(server)
        async with app.running():
            assert _counts(server) == tuple(n + 1 for n in before)  # it listens while serving
    assert _counts(server) == before
