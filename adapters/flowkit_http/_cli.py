"""``flowkit serve``: run an MCP server (or a Quart app) on hypercorn's trio worker.

Usage::

    flowkit serve MODULE:ATTR [--host 127.0.0.1] [--port 8000] [--path /mcp]
                  [--max-sessions N] [--graceful-timeout S] [--backlog N]
    flowkit serve --demo

``ATTR`` names an :class:`~flowkit_http.MCPServer` (served at ``--path`` by a
standalone app) or a Quart app (served as is: mount the endpoint into it
yourself). The current directory is importable, as with hypercorn or uvicorn.
``--backlog`` (default 1024, hypercorn's is 100) is the listen queue: with
100, a burst of a few hundred clients connecting at once overflows it and the
kernel drops SYNs, which clients retry after a second or more (connect p99 in
seconds). The kernel caps it at ``net.core.somaxconn``.
SIGINT/SIGTERM shut down gracefully: open streams are ended at once, then
hypercorn closes the connections; those still open after
``--graceful-timeout`` (a client that stopped reading) are aborted, and the
exit status is 0. ``--max-connections``, ``--body-timeout``,
``--body-budget`` and ``--watchdog`` are the limits of
``flowkit_http._serve`` and ``_watchdog`` (see docs/serving.md, "Limits").
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

import attrs
import trio
from hypercorn.config import Config
from quart import Quart

from ._asgi import MCPApp
from ._quart import create_app
from ._serve import ServeLimits, serve
from ._server import MCPServer
from ._watchdog import Watchdog

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


async def _serve(
    app: Any,
    mcp: MCPApp | None,
    config: Config,
    limits: ServeLimits | None = None,
    watchdog: float = 0.0,
) -> None:
    async def shutdown_trigger() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                logger.info("%s: shutting down", signal.Signals(signum).name)
                break
        if mcp is not None:
            mcp.close_streams()  # don't make clients wait out the graceful timeout

    if watchdog > 0:
        trio.lowlevel.add_instrument(Watchdog(watchdog))
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve(
                app,
                config,
                limits=limits,
                shutdown_trigger=shutdown_trigger,
                task_status=task_status,
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


def _add_client_commands(commands: Any) -> None:
    """``flowkit call`` and ``flowkit tools``, from ``flowkit_client`` (the ``client`` extra)."""
    try:
        from flowkit_client._cli import add_commands
    except ImportError as exc:  # httpx or rich missing
        missing = exc

        def unavailable(args: argparse.Namespace) -> int:
            print(
                f"flowkit {args.command}: pip install 'flowkit[client]' ({missing})",
                file=sys.stderr,
            )
            return 2

        for name in ("call", "tools"):
            sub = commands.add_parser(name, help="(needs the client extra)", add_help=False)
            sub.add_argument("rest", nargs=argparse.REMAINDER)
            sub.set_defaults(run=unavailable)
        return
    add_commands(commands)


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
        "--max-connections",
        type=int,
        default=ServeLimits().max_connections,
        metavar="N",
        help="open connections at most (default 1000); more get 503 and are closed",
    )
    run.add_argument(
        "--body-timeout",
        type=float,
        default=ServeLimits().body_timeout,
        metavar="S",
        help="seconds a request body may take to arrive (default 20); else 408",
    )
    run.add_argument(
        "--body-budget",
        type=int,
        default=ServeLimits().body_budget,
        metavar="BYTES",
        help="bytes all unfinished request bodies may hold (default 64 MiB); else 503",
    )
    run.add_argument(
        "--watchdog",
        type=float,
        default=0.0,
        metavar="S",
        help="log task steps holding the event loop longer than S seconds "
        "(default 0: off; each task step then costs ~1.5 us more)",
    )
    _add_client_commands(commands)
    args = parser.parse_args(argv)
    if args.command != "serve":
        return int(args.run(args))
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
    try:
        limits = ServeLimits(args.max_connections, args.body_timeout, args.body_budget)
    except ValueError as exc:
        parser.error(f"invalid limit: {exc}")
    trio.run(partial(_serve, limits=limits, watchdog=args.watchdog), app, mcp, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
