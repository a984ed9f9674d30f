"""``flowkit call`` and ``flowkit tools``: the client at a terminal.

::

    flowkit call URL TOOL [key=value ...] [--args JSON] [--header K:V ...]
                 [--timeout S] [--quiet | --json] [--no-input] [--era ERA]
    flowkit tools URL [--header K:V ...] [--json]

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

Exit status: 0 on success, 1 if the tool reported an error (``isError``),
2 for bad command-line input, 3 for a protocol or connection error
(including timeouts), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
from functools import partial
from typing import Any

import orjson
import trio

from flowkit import ungrouped

from ._arguments import UsageError

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
        description="Call a tool of an MCP server over Streamable HTTP.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    call.add_argument("url", help="the MCP endpoint, e.g. http://127.0.0.1:8000/mcp")
    call.add_argument("tool", help="the tool's name")
    call.add_argument("pairs", nargs="*", metavar="key=value", help="arguments, typed by schema")
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
    )
    tools.add_argument("url", help="the MCP endpoint, e.g. http://127.0.0.1:8000/mcp")
    tools.add_argument("--json", action="store_true", help="the tools/list entries as JSON")
    tools.set_defaults(run=_run_tools)
    for sub in (call, tools):
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


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"headers": dict(args.header), "era": args.era}


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
        print(f"flowkit {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ClientError as exc:
        if getattr(args, "json", False):
            line = {"type": "error", "error": type(exc).__name__, "message": str(exc)}
            if hasattr(exc, "code"):
                line["code"] = exc.code
            sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
        print(f"flowkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_PROTOCOL


def _run_call(args: argparse.Namespace) -> int:
    from ._render import call_main

    return _run(args, partial(call_main, options=_client_options(args)))


def _run_tools(args: argparse.Namespace) -> int:
    from ._render import tools_main

    return _run(args, partial(tools_main, options=_client_options(args)))
