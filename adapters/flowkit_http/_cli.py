"""``flowkit serve``: run an MCP server (or a Quart app) on hypercorn's trio worker.

Usage::

    flowkit serve MODULE:ATTR [--host 127.0.0.1] [--port 8000] [--path /mcp]
                  [--graceful-timeout S] [--backlog N] [--watchdog S]
                  [--log-level info] [--access-log] [--redis URL] [--workers N]
    limits (``_serve_flags.py``): [--max-connections N] [--body-timeout S]
                   [--body-budget BYTES] [--max-sessions N]
                   [--max-sessions-per-client N] [--trusted-proxy ADDR]...
                   [--session-idle-timeout S] [--handshake-timeout S|off]
                   [--detached-grace S|off] [--max-calls N]
                   [--max-calls-per-session N] [--max-body-size BYTES]
                   [--store-max-bytes BYTES] [--store-max-bytes-per-session BYTES]
                   [--store-max-bytes-per-stream BYTES]
    flowkit serve --demo
    flowkit serve --stdio (MODULE:ATTR | --demo)
    flowkit --version
    observability: [--no-metrics] [--metrics-path P] [--no-dashboard]
                   [--dashboard-path P] [--observe-bind HOST:PORT]
                   [--log-format text|json]

``ATTR`` names an :class:`~flowkit_http.MCPServer` (served at ``--path`` by a
standalone app) or a Quart app or :class:`~flowkit_http.MCPApp` (served as
is: mount the endpoint into it yourself; every mounted path is printed at
start-up). The current directory is importable, as with hypercorn or uvicorn.
``--backlog`` (default 1024, hypercorn's is 100) is the listen queue: with
100, a burst of a few hundred clients connecting at once overflows it and the
kernel drops SYNs, which clients retry after a second or more (connect p99 in
seconds). The kernel caps it at ``net.core.somaxconn``.

``/metrics``, ``/dashboard``, ``/healthz`` and ``/readyz`` are served beside
the endpoint (``docs/observability.md``); ``--observe-bind`` moves the first
two to an address of their own.

Every error (a bad option, an import that fails, a port in use) is one line
on stderr and exit status 1, never a traceback. SIGINT/SIGTERM shut down
gracefully from the moment the "serving" line is printed: open streams are
ended at once, then hypercorn closes the connections; those still open after
``--graceful-timeout`` (a client that stopped reading) are aborted, and the
exit status is 0. The limit flags (``_serve_flags.py``) and ``--watchdog``
are described in docs/serving.md, "Limits".
``--workers N`` runs N processes on the port (``_workers.py``).
``python -m flowkit_http`` runs the same command. ``--stdio`` serves one
client on stdin and stdout instead (``_stdio.py``, docs/stdio.md); the HTTP
options do not apply to it.
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
from functools import partial
from typing import Any, NoReturn

import trio
from hypercorn.config import Config
from quart import Quart

from flowkit._version import __version__

from . import _logformat, _observe, _serve_flags
from ._access import AccessLog
from ._asgi import MCPApp
from ._observe import Observability, ObservedApp
from ._quart import create_app
from ._serve import ServeLimits, serve
from ._server import MCPServer
from ._stdio import run_stdio
from ._watchdog import Watchdog
from ._workers import READY, Worker, supervise, watch_parent, worker_role

__all__ = ["main"]

logger = logging.getLogger("flowkit_http")

# gc.set_threshold for `flowkit serve` (CPython's default: 700, 10, 10).
GC_THRESHOLD = (20_000, 50, 10)

_DESCRIPTION = "Serve flowkit pipelines as MCP tools over Streamable HTTP."
_SERVE_EPILOG = """\
examples:
  flowkit serve --demo                   the demo tools at http://127.0.0.1:8000/mcp
  flowkit serve my_tools:server          an MCPServer in ./my_tools.py
  flowkit serve my_app:app --port 9000   a Quart app with the endpoint mounted in it
  flowkit serve --stdio --demo           one client on stdin/stdout (Claude Desktop, IDEs)

TARGET is MODULE:ATTR, imported with the current directory on sys.path; ATTR
is an MCPServer (served at --path), a Quart app or an MCPApp (served as they
are). SIGINT/SIGTERM end open streams at once and exit 0. Errors are one line
on stderr, exit status 1. See docs/serving.md.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line and exit status 1 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _CannotListen(Exception):
    """The server could not start listening (port in use, bad address, no permission)."""


def _fail(message: str) -> NoReturn:
    raise SystemExit(f"flowkit serve: error: {message}")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535; 0 picks a free one)")
    return port


def _path(text: str) -> str:
    if not text.startswith("/") or any(c in text for c in "?# \t\r\n"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an endpoint path: it starts with '/' and has no query, "
            "fragment or spaces (e.g. /mcp)"
        )
    return text


def load_target(spec: str) -> Any:
    """Import ``MODULE:ATTR`` (``ATTR`` may be dotted) from the current directory."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        _fail(f"expected MODULE:ATTR, got {spec!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        _fail(f"cannot import {module_name!r}: {exc}")
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            _fail(f"{module_name!r} has no attribute {attr!r}")
    return target


def _endpoints(app: Any) -> list[MCPApp]:
    """Every MCPApp in front of ``app``, outermost last: one per ``mount()``.

    ``mount`` puts an MCPApp in front of the app's ASGI callable, with the
    previous one as its fallback (and maybe an :class:`ObservedApp` before
    it); walking the fallbacks finds them all.
    """
    layer = app.asgi_app if isinstance(app, Quart) else app
    found: list[MCPApp] = []
    while isinstance(layer, MCPApp | ObservedApp):
        if isinstance(layer, ObservedApp):
            layer = layer.inner
            continue
        found.append(layer)
        layer = layer.fallback
    return found[::-1]


def _app_for(target: Any, path: str | None, observe: Observability) -> Any:
    """The ASGI app to serve.

    A Quart app is served as is (its own ``mount(..., observe=...)`` decides).
    """
    if isinstance(target, MCPServer):
        return create_app(target, path or "/mcp", observe=observe)
    if not isinstance(target, Quart | MCPApp):
        _fail(f"{type(target).__name__} is neither an MCPServer, a Quart app nor an MCPApp")
    if path is not None:
        _fail("--path applies to an MCPServer target (or --demo); an app has its own paths")
    if isinstance(target, MCPApp):
        return ObservedApp(target, observe, target)
    return target


def _observed(app: Any, observer: tuple[Any, Config] | None) -> list[ObservedApp]:
    """The :class:`ObservedApp` fronts being served (their feeds end at shutdown)."""
    extensions = app.extensions if isinstance(app, Quart) else {}
    found = [app, extensions.get("flowkit_observe"), observer[0] if observer else None]
    return [front for front in found if isinstance(front, ObservedApp)]


def _unwrap(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member groups, else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _serve(
    app: Any,
    endpoints: Sequence[MCPApp],
    config: Config,
    limits: ServeLimits | None = None,
    watchdog: float = 0.0,
    observer: tuple[Any, Config] | None = None,
    worker: Worker | None = None,
) -> None:
    # The signal receiver is open before the server starts, so a SIGTERM sent
    # as soon as the "serving" line is out is a graceful shutdown, never the
    # default action (death by signal, exit status -15).
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        stopping = trio.Event()

        async def shutdown_trigger() -> None:
            async for signum in signals:
                logger.info("%s: shutting down", signal.Signals(signum).name)
                break
            stopping.set()
            for mcp in endpoints:
                mcp.close_streams()  # don't make clients wait out the graceful timeout
            for front in _observed(app, observer):
                front.close_streams()  # dashboard feeds

        if watchdog > 0:
            trio.lowlevel.add_instrument(Watchdog(watchdog))
        async with trio.open_nursery() as nursery:
            if observer is not None:
                for bind in await nursery.start(
                    lambda task_status: serve(
                        observer[0],
                        observer[1],
                        shutdown_trigger=stopping.wait,
                        task_status=task_status,
                    )
                ):
                    print(f"flowkit: serving metrics and dashboard at {bind}", flush=True)
            try:
                binds = await nursery.start(
                    lambda task_status: serve(
                        app,
                        config,
                        limits=limits,
                        shutdown_trigger=shutdown_trigger,
                        task_status=task_status,
                    )
                )
            except BaseException as exc:
                error = _unwrap(exc)
                if not isinstance(error, OSError | OverflowError):
                    raise
                raise _CannotListen(f"cannot listen on {' '.join(config.bind)}: {error}") from None
            # Everything imported and built at start-up lives as long as the
            # process: move it out of the collector's sight so collections stay
            # short (tail latency; docs/serving.md, "flowkit serve").
            gc.collect()
            gc.freeze()
            # Young collections every 700 allocations (CPython's default) land in
            # the event path hundreds of times a second under load; fewer ones cut
            # the lateness tail at C=500 (p99 ~95 -> ~65 ms, benchmarks.md). Full
            # collections still come (every 10 middle ones, CPython's heuristic).
            gc.set_threshold(*GC_THRESHOLD)
            for bind in binds:
                if not endpoints:
                    print(f"flowkit: serving {bind} (no MCP endpoint mounted)", flush=True)
                for mcp in endpoints:
                    print(f"flowkit: serving MCP at {bind}{mcp.path}", flush=True)
            if worker is not None:
                print(READY, flush=True)  # to the parent (_workers.py)
                nursery.start_soon(watch_parent, worker, stopping)


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


def _keygen(args: argparse.Namespace) -> int:
    print(_serve_flags.new_request_state_key())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flowkit", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"flowkit {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    keygen = commands.add_parser(
        "keygen",
        help="print a fresh key for FLOWKIT_REQUEST_STATE_KEYS",
        description="Print a fresh random 256-bit key, base64url, for FLOWKIT_REQUEST_STATE_KEYS.",
    )
    keygen.set_defaults(run=_keygen)
    run = commands.add_parser(
        "serve",
        help="serve an MCP server over Streamable HTTP",
        description="Serve an MCPServer, or a Quart app with the MCP endpoint mounted,\n"
        "on hypercorn's trio worker.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "target", nargs="?", metavar="TARGET", help="MODULE:ATTR of an MCPServer or a Quart app"
    )
    run.add_argument("--demo", action="store_true", help="serve the demo tools")
    run.add_argument(
        "--stdio",
        action="store_true",
        help="serve one client on stdin/stdout (newline-delimited JSON-RPC) instead of HTTP",
    )
    run.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    run.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    run.add_argument(
        "--path", type=_path, default=None, help="endpoint path of an MCPServer (default /mcp)"
    )
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
        "--redis",
        default=os.environ.get("FLOWKIT_REDIS_URL"),
        metavar="URL",
        help="share sessions and resumable streams with other instances through Redis "
        "(redis[s]://[user:password@]host:port/db; default $FLOWKIT_REDIS_URL; docs/scaling.md)",
    )
    run.add_argument(
        "--workers",
        type=_serve_flags.count,
        default=1,
        metavar="N",
        help="processes serving the port (default 1); more than 1 needs --redis "
        '(docs/scaling.md, "Workers")',
    )
    run.add_argument(
        "--watchdog",
        type=float,
        default=0.0,
        metavar="S",
        help="log task steps holding the event loop longer than S seconds "
        "(default 0: off; each task step then costs ~1.5 us more)",
    )
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="lowest level logged to stderr (default info)",
    )
    run.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per HTTP request at INFO (default off)",
    )
    _serve_flags.add_arguments(run)
    _observe.add_arguments(run)
    _add_client_commands(commands)
    return parser


def _config(args: argparse.Namespace) -> Config:
    config = Config()
    host = f"[{args.host}]" if ":" in args.host else args.host
    config.bind = [f"{host}:{args.port}"]
    config.graceful_timeout = args.graceful_timeout
    config.backlog = args.backlog
    # hypercorn's own stderr handler would print every line twice (its handler
    # and the root one main() sets up): hand it a plain logger instead.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None  # ours, when asked for: one line per request (_access.py)
    return config


def _check_keys(args: argparse.Namespace, target: Any) -> None:
    """``--redis`` and ``--workers N > 1`` need the request-state keys: refused before connecting.

    Whether or not a tool asks today (a tool added at run time may), a
    2026-era ``requestState`` sealed by one instance must open in another.
    """
    if args.stdio or not isinstance(target, MCPServer) or target.config.request_state_keys:
        return
    if args.redis or target.shared is not None:  # --workers N > 1 without it: _check_workers
        _fail(
            "--redis and --workers N > 1 need FLOWKIT_REQUEST_STATE_KEYS, the same on every "
            "instance: a 2026-07-28 requestState sealed by one must open in another "
            "(make a key with: flowkit keygen)"
        )


def _check_workers(args: argparse.Namespace, target: Any) -> None:
    """What ``--workers N > 1`` needs, refused before anything starts.

    Each worker is a process of its own: a 2025-era session lives in the one
    that initialized it unless a shared store holds it (and then the
    request-state keys are needed too: :func:`_check_keys`).
    """
    if args.workers > 1:
        if args.stdio:
            _fail("--workers applies to HTTP serving, not --stdio (one client, one process)")
        if not isinstance(target, MCPServer):
            _fail("--workers N > 1 serves an MCPServer target (or --demo)")
        if target.shared is None:
            _fail(
                "--workers N > 1 needs --redis: 2025-era sessions would live in one worker "
                'each, and their next request may reach another (docs/scaling.md, "Workers")'
            )


def _listen(config: Config) -> Any:
    """The parent's listening socket, shared by every worker (one line on failure)."""
    try:
        (sock,) = config.create_sockets().insecure_sockets
        sock.listen(config.backlog)
    except (OSError, OverflowError) as exc:
        _fail(f"cannot listen on {' '.join(config.bind)}: {exc}")
    return sock


def _observe_bind_of(bind: str, index: int, workers: int) -> str:
    """Worker ``index``'s ``--observe-bind``: the given port plus its index."""
    host, _, port = bind.rpartition(":")
    if int(port) + workers - 1 > 65535:
        _fail(
            f"--observe-bind {bind}: {workers} workers need ports up to {int(port) + workers - 1}"
        )
    return f"{host}:{int(port) + index}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowkit`` console script (and ``python -m flowkit_http``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        return int(args.run(args))
    observe, separate, observe_bind = _observe.from_arguments(parser, args)
    if args.demo == bool(args.target):
        _fail("give exactly one of TARGET (MODULE:ATTR) and --demo")
    logging.basicConfig(level=args.log_level.upper())
    _logformat.configure(args.log_format)
    if args.demo:
        from ._demo import server

        target: Any = server
    else:
        target = load_target(args.target)
    limits = _serve_flags.apply(args, target, _fail, os.environ)
    _check_keys(args, target)
    if args.redis and not args.stdio:
        target.shared = _redis(parser, target, args.redis)
        if args.demo:
            from ._demo import add_redis_tools

            add_redis_tools(target, args.redis)  # tail_stream: a live Redis stream
    _check_workers(args, target)
    if args.stdio:
        if not isinstance(target, MCPServer):
            _fail(f"--stdio serves an MCPServer, not a {type(target).__name__}")
        return run_stdio(target)  # one peer, one process: nothing to share (--redis)
    app = _app_for(target, args.path, observe)
    endpoints = _endpoints(app)
    if args.access_log:
        app = AccessLog(app)
    config = _config(args)
    role = worker_role()
    if role is None and args.workers > 1:
        if observe_bind is not None:
            _observe_bind_of(observe_bind, 0, args.workers)  # the ports fit
        return supervise(argv, _listen(config), args.workers, args.graceful_timeout)
    if role is not None:
        config.bind = [f"fd://{role.fd}"]  # the parent's socket (_workers.py)
        if observe_bind is not None:
            observe_bind = _observe_bind_of(observe_bind, role.index, args.workers)
    observer = None
    if separate is not None and observe_bind is not None:
        if not endpoints:
            _fail("--observe-bind needs an MCP endpoint mounted in the app")
        observer_config = Config()
        observer_config.bind = [observe_bind]
        observer_config.accesslog = None
        observer_config.errorlog = config.errorlog
        observer = (ObservedApp(endpoints[-1], separate, None), observer_config)
    try:
        trio.run(
            partial(
                _serve,
                limits=limits,
                watchdog=args.watchdog,
                observer=observer,
                worker=role,
            ),
            app,
            endpoints,
            config,
        )
    except BaseException as exc:
        error = _unwrap(exc)
        if not isinstance(error, _CannotListen):
            raise
        _fail(str(error))
    return 0
