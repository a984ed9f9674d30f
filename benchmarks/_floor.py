"""The floor: bare hypercorn serving MCP-shaped replies with no MCP logic at all.

Run as a child process by the benchmarks (``--servers floor``)::

    python -m benchmarks._floor --port 8101

What the stack itself (trio, hypercorn's own ``serve``, h11) costs on this machine,
for the same load client as the real servers: a plain ASGI function, no
validation, no session table, no outbox, no event store, no task per call. It is
what issue 19's table calls "bare hypercorn, no MCP logic", so a benchmark can
print how far each server sits above what the machine can do at all.

It answers only what the load client sends, and the same bytes a real server
would (the client parses them the same way):

* ``initialize``: a JSON result and an ``mcp-session-id`` (never checked later);
* a notification: ``202``;
* ``tools/call ticker(count, interval_ms=0)``: an SSE response, progress ``1..count``
  due at ``start + i x interval_ms`` (``trio.sleep_until``), then the result;
* ``tools/call hold(seconds)``: an SSE response that sends nothing until the result;
* any other ``tools/call`` (``echo``): a JSON result.
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_JSON = [(b"content-type", b"application/json")]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _event(message: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"


async def _reply(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Send, rid: Any, token: Any, name: str, args: dict[str, Any]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _SSE})
    if name == "ticker":
        count, interval = int(args["count"]), args.get("interval_ms", 0) / 1000
        start = trio.current_time()
        for i in range(1, count + 1):
            if interval > 0:
                await trio.sleep_until(start + i * interval)
            note = {"progressToken": token, "progress": i, "total": count}
            note["message"] = f"tick {i}/{count}"
            body = _event({"jsonrpc": "2.0", "method": "notifications/progress", "params": note})
            await send({"type": "http.response.body", "body": body, "more_body": True})
        result: dict[str, Any] = {"count": count}
    else:
        await trio.sleep(float(args.get("seconds", 0)))
        result = {"seconds": args.get("seconds", 0)}
    text = [{"type": "text", "text": orjson.dumps(result).decode()}]
    final = {"content": text, "structuredContent": result, "isError": False}
    body = _event({"jsonrpc": "2.0", "id": rid, "result": final})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """One ASGI function: the request's JSON-RPC method picks the canned reply."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["method"] != "POST":
        await _reply(send, 405, b"", [])
        return
    message = orjson.loads(await _body(receive))
    method, rid = message.get("method"), message.get("id")
    if rid is None:
        await _reply(send, 202, b"", [])
    elif method == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "floor", "version": "0"},
        }
        reply = orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": result})
        await _reply(send, 200, reply, [*_JSON, (b"mcp-session-id", b"floor")])
    elif method == "tools/call" and message["params"]["name"] in ("ticker", "hold"):
        params = message["params"]
        token = params.get("_meta", {}).get("progressToken")
        await _stream(send, rid, token, params["name"], params.get("arguments", {}))
    else:
        result = {"content": [{"type": "text", "text": "ok"}], "isError": False}
        await _reply(
            send, 200, orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": result}), _JSON
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"{args.host}:{args.port}"]
    config.accesslog = None
    config.backlog = 1024  # flowkit serve's default
    # flowkit serve's collector settings (a setting, not MCP logic), so the floor
    # differs from it by the code alone.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 10)
    trio.run(serve, app, config)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
