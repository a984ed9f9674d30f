"""``/dashboard``: a live page of what the server is doing, fed over SSE.

The page (``static/dashboard.html`` and ``static/dashboard.js``, shipped in
the package: no build step, no CDN) opens an ``EventSource`` on
``/dashboard/events`` and draws each observation it receives: throughput,
sessions and streams, per-tool call rates and latencies, drops and
conflation, buffer fill and batch sizes of the running pipelines, recent
errors. Rates are computed in the page from two successive observations.

The feed is a flowkit pipeline: a source that takes one
:meth:`~flowkit_http._telemetry.Telemetry.snapshot` per interval, a ``map``
to its SSE bytes, and ``flowkit.latest()``. While the browser reads slowly
(a background tab, a slow link) the socket write waits, ``latest`` keeps
only the newest observation and counts the others as dropped, so a slow tab
costs one observation of memory, never a queue.

The observations carry counts, tool and stage names and error kinds (an
exception's type), never a tool's arguments or results, nor session ids.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio

import flowkit
from flowkit import Pipeline, open_pipeline
from flowkit.mcp import Reply

from ._telemetry import AppStatistics

if TYPE_CHECKING:
    from ._asgi import MCPApp

__all__ = ["asset", "encode_observation", "open_feed"]

_TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8"}
#: Only the page's own files: a script injected through a tool or stage name
#: (shown as text anyway) could not load anything else or call home.
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"connect-src 'self'; img-src 'self' data:"
)


@cache
def _read(name: str) -> bytes:
    return (importlib.resources.files("flowkit_http") / "static" / name).read_bytes()


def asset(name: str, base: str) -> Reply:
    """One of the page's files (``dashboard.html``, ``dashboard.js``).

    ``{{base}}`` in them becomes ``base``, the dashboard's path, so the page
    finds its script wherever it is mounted (and with a trailing slash).
    """
    kind = _TYPES[name[name.rindex(".") :]]
    return Reply(
        200,
        (
            (b"content-type", kind),
            (b"cache-control", b"no-cache"),
            (b"content-security-policy", _CSP),
            (b"x-content-type-options", b"nosniff"),
        ),
        _read(name).replace(b"{{base}}", base.encode()),
    )


def encode_observation(stats: AppStatistics) -> bytes:
    """One observation as an SSE event (JSON; ``inf`` bounds become ``null``)."""
    data: dict[str, Any] = attrs.asdict(stats)
    return b"data: " + orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS) + b"\n\n"


async def _observations(app: MCPApp, interval: float) -> AsyncIterator[AppStatistics]:
    while True:
        yield app.telemetry.snapshot(app)
        await trio.sleep(interval)


@asynccontextmanager
async def open_feed(app: MCPApp, interval: float) -> AsyncIterator[Pipeline[bytes]]:
    """The dashboard feed: SSE events of ``app``'s observations, conflated.

    Yields the running pipeline; its last stage is ``latest`` (named
    ``dashboard``), whose statistics show what a slow reader skipped.
    """
    async with open_pipeline(
        _observations(app, interval),
        flowkit.map(encode_observation),
        flowkit.latest(name="dashboard"),
    ) as pipeline:
        yield pipeline
