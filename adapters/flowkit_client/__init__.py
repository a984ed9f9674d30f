"""flowkit_client: an MCP client on trio, for scripts, tests and ``flowkit call``.

::

    async with open_client("http://127.0.0.1:8000/mcp") as client:
        async with client.call_tool("ticker", {"count": 5}) as call:
            async for event in call:        # Progress, LogMessage, ToolResult
                print(event)
        result = await call.result()

    async with open_stdio_client("flowkit serve --stdio --demo") as client:
        ...                                 # the same Client, over a subprocess's stdio

HTTP is httpx's, the protocol the core's (:class:`flowkit.mcp.SSEDecoder`,
JSON-RPC messages, the :data:`flowkit.mcp.VERSIONS` policies). Both eras:
2026-07-28 through ``server/discover`` when the server offers it, else the
2025-11-25 handshake, whose dropped streams are resumed with
``Last-Event-ID``. See ``docs/client.md``; the errors are drawn in
``flowkit_client._exceptions``.
"""

from ._call import ToolCall
from ._client import MODERN_VERSION, Client, Handler
from ._events import Event, LogMessage, Progress, ServerInfo, ToolInfo, ToolResult
from ._exceptions import (
    CallTimeout,
    ClientError,
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    ProtocolError,
    ReadTimeout,
    ResumeFailed,
    RPCError,
    SessionExpired,
    StreamCut,
    TimeoutError,
    ToolError,
    TransportError,
)
from ._open import open_client, open_stdio_client
from ._policy import RetryPolicy, Timeouts

__all__ = [
    "MODERN_VERSION",
    "CallTimeout",
    "Client",
    "ClientError",
    "ConnectError",
    "ConnectTimeout",
    "Event",
    "HTTPStatusError",
    "Handler",
    "LogMessage",
    "Progress",
    "ProtocolError",
    "RPCError",
    "ReadTimeout",
    "ResumeFailed",
    "RetryPolicy",
    "ServerInfo",
    "SessionExpired",
    "StreamCut",
    "TimeoutError",
    "Timeouts",
    "ToolCall",
    "ToolError",
    "ToolInfo",
    "ToolResult",
    "TransportError",
    "open_client",
    "open_stdio_client",
]
