"""Partial results and progress, as the official SDK 2.x client sees them, in both eras.

* Progress never exceeds a declared total: a tool that yields a ``Progress``
  and a ``Partial`` per page (two steps a page) with ``total=pages`` reports
  the steps past the total without one.
* A ``Partial``'s data travels as a log only when the client asked for logs
  (``logging/setLevel`` in 2025-11-25; ``_meta["io.modelcontextprotocol/logLevel"]``
  in 2026-07-28, which the default ``Client(url)`` does not send); its message
  travels as the progress message either way; a partial with no carrier at
  all is counted in the result's ``_meta``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from mcp import Client
from mcp.types import CallToolResult, LoggingMessageNotificationParams

from flowkit_http import MCPApp, MCPServer, Partial, Progress, Result

from ._sdk import with_client
from ._serving import serving

PAGES = 3
UNDELIVERED = "dev.flowkit/undeliveredPartials"


def make_server() -> MCPServer:
    server = MCPServer("partials")

    @server.tool
    async def pages(n: int) -> AsyncIterator[Any]:
        """A progress step and a partial result per page."""
        for page in range(1, n + 1):
            yield Progress(f"reading page {page}", total=n)
            yield Partial(
                {"page": page, "rows": page * 10}, message=f"page {page}: {page * 10} rows"
            )
        yield Result(structured={"pages": n})

    return server


class Seen:
    """What the client's callbacks received."""

    def __init__(self) -> None:
        self.progress: list[tuple[float, float | None, str | None]] = []
        self.logs: list[Any] = []

    async def on_progress(self, value: float, total: float | None, message: str | None) -> None:
        self.progress.append((value, total, message))

    async def on_log(self, params: LoggingMessageNotificationParams) -> None:
        self.logs.append(params.data)


async def _call(
    mode: str,
    *,
    progress: bool = True,
    set_level: str | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[CallToolResult, Seen]:
    seen = Seen()

    async def body(client: Client) -> CallToolResult:
        if set_level is not None:
            await client.set_logging_level(set_level)  # type: ignore[arg-type]
        return await client.call_tool(
            "pages",
            {"n": PAGES},
            progress_callback=seen.on_progress if progress else None,
            meta=meta,  # type: ignore[arg-type]
        )

    with trio.fail_after(20):
        async with serving(MCPApp(make_server())) as url:
            result = await with_client(url + "/mcp", body, mode=mode, logging_callback=seen.on_log)
    assert not result.is_error, result
    assert result.structured_content == {"pages": PAGES}
    return result, seen


MESSAGES = [
    m for p in range(1, PAGES + 1) for m in (f"reading page {p}", f"page {p}: {p * 10} rows")
]
DATA = [{"page": p, "rows": p * 10} for p in range(1, PAGES + 1)]


async def test_progress_never_exceeds_a_declared_total() -> None:
    _, seen = await _call("auto")
    values = [value for value, _, _ in seen.progress]
    assert values == list(range(1, 2 * PAGES + 1))  # every item is a step, Partial included
    for value, total, _ in seen.progress:
        assert total is None or value <= total, seen.progress
    # The steps within the total carry it; the ones past it go out without.
    assert [total for _, total, _ in seen.progress] == [PAGES] * PAGES + [None] * PAGES


async def test_default_modern_client_gets_every_partial_message_as_progress() -> None:
    """``Client(url)`` (2026-07-28, no log level asked): messages, not data, and nothing lost."""
    result, seen = await _call("auto")
    assert [message for _, _, message in seen.progress] == MESSAGES
    assert seen.logs == []  # the era's rule: no logLevel in _meta, no notifications/message
    assert UNDELIVERED not in (result.meta or {})


async def test_modern_client_asking_for_logs_gets_the_data() -> None:
    result, seen = await _call("auto", meta={"io.modelcontextprotocol/logLevel": "info"})
    assert seen.logs == DATA
    assert [message for _, _, message in seen.progress] == MESSAGES
    assert UNDELIVERED not in (result.meta or {})


# The SDK marks logging/setLevel deprecated (SEP-2577, 2026-07-28); it is the 2025 era's way.
_SET_LEVEL_IS_DEPRECATED = pytest.mark.filterwarnings(
    "ignore::mcp.shared.exceptions.MCPDeprecationWarning"
)


@_SET_LEVEL_IS_DEPRECATED
async def test_legacy_client_setting_a_level_gets_the_data() -> None:
    result, seen = await _call("legacy", set_level="info")
    assert seen.logs == DATA
    assert [message for _, _, message in seen.progress] == MESSAGES
    assert UNDELIVERED not in (result.meta or {})


async def test_partials_with_no_carrier_are_counted_in_the_result() -> None:
    """No progressToken and no logs asked for: the result says how many partials it missed."""
    result, seen = await _call("auto", progress=False)
    assert seen.progress == []
    assert seen.logs == []
    assert (result.meta or {})[UNDELIVERED] == PAGES


@_SET_LEVEL_IS_DEPRECATED
async def test_legacy_client_above_the_partials_level_gets_them_counted() -> None:
    result, seen = await _call("legacy", progress=False, set_level="error")
    assert seen.logs == []
    assert (result.meta or {})[UNDELIVERED] == PAGES
