"""``flowkit call`` and ``flowkit tools``: the client at a terminal.

::

    flowkit call URL TOOL [key=value ...] [--args JSON] [--header K:V ...]
                 [--timeout S] [--quiet | --json] [--no-input] [--era ERA]
    flowkit call --stdio COMMAND TOOL [key=value ...] [options]
    flowkit tools URL [--header K:V ...] [--json]
    flowkit tools --stdio COMMAND [--json]

``call`` shows a live progress bar (value, total, message, rate), prints
partial results and log messages as they arrive, and pretty-prints the
final result. ``key=value`` arguments are typed from the tool's input
schema (``count=5`` is an integer, ``flag=true`` a boolean, arrays and
objects are JSON); ``--args`` gives them all as one JSON object, and
``key=value`` pairs override its keys. It asks for partial results (logs at
``info``) in both eras. An elicitation request from the tool is asked at the
terminal, one prompt per field of its schema; ``--no-input`` declines it.
Ctrl-C cancels the call on the server before exiting. ``--json`` writes one
JSON object per line instead (``{"type": "progress" | "log" | "result" |
"error", ...}``, the result or error last) and no progress bar.

``--stdio COMMAND`` launches the server instead of connecting to a URL, and
speaks MCP over its stdin and stdout: COMMAND is one argument, split as a
shell would (``--stdio 'flowkit serve --stdio --demo'``); the server's
stderr goes to ours; at the end its stdin is closed and it is stopped.

Exit status: 0 on success, 1 if the tool reported an error (``isError``),
2 for bad command-line input, 3 for a protocol or connection error
(including timeouts), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
import trio

from flowkit import ungrouped

from ._arguments import UsageError

if TYPE_CHECKING:
    from ._open import Connect

__all__ = ["add_commands"]

EXIT_TOOL_ERROR, EXIT_USAGE, EXIT_PROTOCOL, EXIT_INTERRUPTED = 1, 2, 3, 130
_DOC = __doc__ or ""


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected K:V, got {text!r}")
    return name.strip(), value.strip()


def add_commands(commands: Any) -> None:
    """Register ``call`` and ``tools`` on the ``flowkit`` parser's subparsers."""
    epilog = _DOC[_DOC.index("``call`` shows") :].replace("``", "")
    call = commands.add_parser(
        "call",
        help="call a tool of an MCP server, with live progress",
        description="Call a tool of an MCP server over Streamable HTTP or stdio.",
        usage="flowkit call [options] (URL | --stdio COMMAND) TOOL [key=value ...]",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    call.add_argument(
        "words",
        nargs="*",
        metavar="URL TOOL key=value",
        help="the MCP endpoint (e.g. http://127.0.0.1:8000/mcp; none with --stdio), "
        "the tool's name, and its arguments, typed by schema",
    )
    call.add_argument("--args", dest="json_args", metavar="JSON", help="arguments as a JSON object")
    call.add_argument("--timeout", type=float, metavar="S", help="seconds the call may take")
    output = call.add_mutually_exclusive_group()
    output.add_argument("--quiet", "-q", action="store_true", help="print the result only")
    output.add_argument("--json", action="store_true", help="JSON lines: one per event")
    call.add_argument("--no-input", action="store_true", help="decline elicitation requests")
    call.set_defaults(run=_run_call)
    tools = commands.add_parser(
        "tools",
        help="list the tools of an MCP server",
        description="List the tools of an MCP server, with their parameters.",
        usage="flowkit tools [options] (URL | --stdio COMMAND)",
    )
    tools.add_argument(
        "words", nargs="*", metavar="URL", help="the MCP endpoint (none with --stdio)"
    )
    tools.add_argument("--json", action="store_true", help="the tools/list entries as JSON")
    tools.set_defaults(run=_run_tools)
    for sub in (call, tools):
        sub.add_argument(
            "--stdio",
            metavar="COMMAND",
            help="launch this server command and speak MCP over its stdin/stdout "
            "(one argument, e.g. 'flowkit serve --stdio --demo')",
        )
        sub.add_argument(
            "--header",
            "-H",
            action="append",
            type=_header,
            default=[],
            metavar="K:V",
            help="an HTTP header for every request (repeatable), e.g. 'Authorization: Bearer X'",
        )
        sub.add_argument(
            "--era",
            choices=["auto", "2026-07-28", "2025-11-25"],
            default="auto",
            help="protocol era (default auto: server/discover, else the handshake)",
        )


# -- running ------------------------------------------------------------------------


def _connection(args: argparse.Namespace, *, tool: bool) -> Connect:
    """How to reach the server the words name; sets ``args.tool`` and ``args.pairs``.

    Raises:
        UsageError: the words do not fit ``(URL | --stdio COMMAND) [TOOL ...]``.
    """
    from ._open import open_client, open_stdio_client

    words = list(args.words)
    if args.stdio is not None:
        command = shlex.split(args.stdio)
        if not command:
            raise UsageError(
                "--stdio needs the server's command, e.g. 'flowkit serve --stdio --demo'"
            )
        if args.header:
            raise UsageError("--header is for HTTP servers; a stdio server gets no headers")
        connect: Connect = partial(open_stdio_client, command, era=args.era)
        where = shlex.join(command)
    else:
        if not words:
            raise UsageError("expected the server's URL (or --stdio COMMAND)")
        where = words.pop(0)
        if not where.startswith(("http://", "https://")):
            raise UsageError(
                f"expected an http:// or https:// URL, got {where!r} "
                "(--stdio COMMAND launches a server)"
            )
        connect = partial(open_client, where, headers=dict(args.header), era=args.era)
    if tool:
        if not words:
            raise UsageError("expected the tool's name after the server")
        args.tool, args.pairs = words[0], words[1:]
    elif words:
        raise UsageError(f"unexpected arguments: {shlex.join(words)}")
    args.where = where
    return connect


def _run(args: argparse.Namespace, main: Any) -> int:
    """Run ``main(args)`` under trio; Ctrl-C cancels it (exit 130), client errors exit 3."""
    from ._exceptions import ClientError

    async def supervised() -> int:
        interrupted = False
        status = EXIT_INTERRUPTED
        with trio.open_signal_receiver(signal.SIGINT) as signals, ungrouped():
            async with trio.open_nursery() as nursery:

                async def on_sigint() -> None:
                    nonlocal interrupted
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()

                async def body() -> None:
                    nonlocal status
                    status = await main(args)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(on_sigint)
                nursery.start_soon(body)
        if interrupted:
            print("flowkit: cancelled", file=sys.stderr)
            return EXIT_INTERRUPTED
        return status

    try:
        return trio.run(supervised)
    except UsageError as exc:
        return _usage(args, exc)
    except ClientError as exc:
        if getattr(args, "json", False):
            line = {"type": "error", "error": type(exc).__name__, "message": str(exc)}
            if hasattr(exc, "code"):
                line["code"] = exc.code
            sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
        print(f"flowkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_PROTOCOL


def _run_call(args: argparse.Namespace) -> int:
    return _run_command(args, tool=True)


def _run_tools(args: argparse.Namespace) -> int:
    return _run_command(args, tool=False)


def _run_command(args: argparse.Namespace, *, tool: bool) -> int:
    """Run ``call`` (``tool``) or ``tools``; rich is imported only now, off ``serve``'s path."""
    try:
        from . import _render
    except ImportError as exc:  # rich missing: httpx alone does not make the extra
        print(f"flowkit {args.command}: pip install 'flowkit[client]' ({exc})", file=sys.stderr)
        return EXIT_USAGE
    try:
        connect = _connection(args, tool=tool)
    except UsageError as exc:
        return _usage(args, exc)
    main = _render.call_main if tool else _render.tools_main
    return _run(args, partial(main, connect=connect))


def _usage(args: argparse.Namespace, exc: UsageError) -> int:
    print(f"flowkit {args.command}: {exc}", file=sys.stderr)
    return EXIT_USAGE
