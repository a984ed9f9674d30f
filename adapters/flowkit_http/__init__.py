"""flowkit_http: serve flowkit pipelines as MCP tools over Streamable HTTP.

Declare tools on an :class:`MCPServer`, then either mount it into a
quart-trio app (``mount(app, server)``), serve the bare ASGI app
(:class:`MCPApp`), or run ``flowkit serve module:server``. See
``docs/serving.md``.
"""

from ._asgi import MCPApp
from ._gate import GateStatistics, RequestGate
from ._items import CloseStream, Partial, Progress, Result, ToolPipeline
from ._live import LiveResource, LiveResourceStatistics
from ._observe import Observability, ObservedApp
from ._outbox import OutboxStatistics
from ._quart import create_app, mount
from ._serve import ServeLimits, serve
from ._server import MCPServer, StreamSettings
from ._watchdog import Watchdog

__all__ = [
    "CloseStream",
    "GateStatistics",
    "LiveResource",
    "LiveResourceStatistics",
    "MCPApp",
    "MCPServer",
    "Observability",
    "ObservedApp",
    "OutboxStatistics",
    "Partial",
    "Progress",
    "RequestGate",
    "Result",
    "ServeLimits",
    "StreamSettings",
    "ToolPipeline",
    "Watchdog",
    "create_app",
    "mount",
    "serve",
]
