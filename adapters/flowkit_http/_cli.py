"""``flowkit serve``: run an MCP server (or a Quart app) on hypercorn's trio worker.

Usage::

    flowkit serve MODULE:ATTR [--host 127.0.0.1] [--port 8000] [--path /mcp]
                  [--max-sessions N] [--graceful-timeout S] [--backlog N]
                  [--redis URL]
    flowkit serve --demo

``ATTR`` names an :class:`~flowkit_http.MCPServer` (served at ``--path`` by a
standalone app) or a Quart app (served as is: mount the endpoint into it
yourself). The current directory is importable, as with hypercorn or uvicorn.
``--backlog`` (default 1024, hypercorn's is 100) is the listen queue: with
100, a burst of a few hundred clients connecting at once overflows it and the
kernel drops SYNs, which clients retry after a second or more (connect p99 in
seconds). The kernel caps it at ``net.core.somaxconn``.
SIGINT/SIGTERM shut down gracefully: open streams are ended at once, then
hypercorn closes the connections; the exit status is 0.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Quart

from ._asgi import MCPApp
from ._quart import create_app
from ._server import MCPServer

__all__ = ["main"]

logger = logging.getLogger("flowkit_http")

# gc.set_threshold for `flowkit serve` (CPython's default: 700, 10, 10).
GC_THRESHOLD = (20_000, 50, 10)


def load_target(spec: str) -> Any:
    """Import ``MODULE:ATTR`` (``ATTR`` may be dotted) from the current directory."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"flowkit serve: expected MODULE:ATTR, got {spec!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"flowkit serve: cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SystemExit(f"flowkit serve: {module_name!r} has no attribute {attr!r}") from None
    return target


def _app_for(target: Any, path: str) -> tuple[Any, MCPApp | None]:
    """The ASGI app to serve, and the MCP endpoint inside it if we can find it."""
    if isinstance(target, MCPServer):
        app = create_app(target, path)
        return app, app.extensions["flowkit_mcp"]
    if isinstance(target, Quart):
        return target, target.extensions.get("flowkit_mcp")
    if isinstance(target, MCPApp):
        return target, target
    raise SystemExit(
        f"flowkit serve: {type(target).__name__} is neither an MCPServer, a Quart app nor an MCPApp"
    )


async def _serve(app: Any, mcp: MCPApp | None, config: Config) -> None:
    async def shutdown_trigger() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                logger.info("%s: shutting down", signal.Signals(signum).name)
                break
        if mcp is not None:
            mcp.close_streams()  # don't make clients wait out the graceful timeout

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve(
                app, config, shutdown_trigger=shutdown_trigger, task_status=task_status
            )
        )
        # Everything imported and built at start-up lives as long as the
        # process: move it out of the collector's sight so collections stay
        # short (tail latency) — DESIGN "Performance levers".
        gc.collect()
        gc.freeze()
        # Young collections every 700 allocations (CPython's default) land in
        # the event path hundreds of times a second under load; fewer ones cut
        # the lateness tail at C=500 (p99 ~95 -> ~65 ms, benchmarks.md). Full
        # collections still come (every 10 middle ones, CPython's heuristic).
        gc.set_threshold(*GC_THRESHOLD)
        for bind in binds:
            print(f"flowkit: serving MCP at {bind}{mcp.path if mcp else ''}", flush=True)


def _redis(parser: argparse.ArgumentParser, target: Any, url: str) -> Any:
    """``--redis URL``: the shared store for an MCPServer (one-line errors)."""
    if not isinstance(target, MCPServer):
        parser.error("--redis applies to an MCPServer target (or --demo)")
    try:
        from flowkit_redis import RedisShared
    except ImportError:
        parser.error("--redis needs the redis extra: pip install 'flowkit[redis]'")
    try:
        shared = RedisShared(url)
    except ValueError as exc:
        parser.error(f"--redis: {exc}")
    logger.info("sharing state through Redis at %s", shared.url.redacted())
    return shared


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowkit`` console script."""
    parser = argparse.ArgumentParser(prog="flowkit", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve an MCP server over Streamable HTTP")
    run.add_argument("target", nargs="?", help="MODULE:ATTR of an MCPServer or a Quart app")
    run.add_argument("--demo", action="store_true", help="serve the demo tools")
    run.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    run.add_argument("--path", default="/mcp", help="endpoint path (default /mcp)")
    run.add_argument(
        "--graceful-timeout", type=float, default=3.0, help="seconds to let connections close"
    )
    run.add_argument(
        "--backlog",
        type=int,
        default=1024,
        metavar="N",
        help="listen queue length (default 1024; hypercorn's 100 drops connects in bursts)",
    )
    run.add_argument(
        "--max-sessions",
        type=int,
        default=None,
        metavar="N",
        help="cap on live sessions (default: the server's config, 1000); "
        "initialize beyond it gets 503 + Retry-After",
    )
    run.add_argument(
        "--redis",
        default=os.environ.get("FLOWKIT_REDIS_URL"),
        metavar="URL",
        help="share sessions and resumable streams with other instances through Redis "
        "(redis[s]://[user:password@]host:port/db; default $FLOWKIT_REDIS_URL; docs/scaling.md)",
    )
    args = parser.parse_args(argv)
    if args.demo == bool(args.target):
        parser.error("serve needs exactly one of MODULE:ATTR and --demo")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if args.demo:
        from ._demo import server

        target: Any = server
    else:
        target = load_target(args.target)
    if args.max_sessions is not None:
        if args.max_sessions < 1:
            parser.error("--max-sessions must be at least 1")
        if not isinstance(target, MCPServer):
            parser.error("--max-sessions applies to an MCPServer target (or --demo)")
        target.config = attrs.evolve(target.config, max_sessions=args.max_sessions)
    if args.redis:
        target.shared = _redis(parser, target, args.redis)
    app, mcp = _app_for(target, args.path)
    config = Config()
    host = f"[{args.host}]" if ":" in args.host else args.host
    config.bind = [f"{host}:{args.port}"]
    config.graceful_timeout = args.graceful_timeout
    config.backlog = args.backlog
    config.accesslog = None
    # hypercorn's own stderr handler would print every line twice (its handler
    # and the root one set up above); hand it a plain logger instead.
    config.errorlog = logging.getLogger("hypercorn.error")
    trio.run(_serve, app, mcp, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
