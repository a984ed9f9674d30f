"""What ``flowkit call`` and ``flowkit tools`` show: rich for people, JSON lines for scripts.

The progress bar is rich's, redrawn at most ten times a second whatever the
event rate, so a tool that streams 100k events/s costs the terminal nothing
more than one that ticks once a second. Logs and partial results are printed
above the bar as they arrive (``Progress.console.print``) rather than into
it, so they stay in the scrollback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from functools import partial
from typing import Any

import orjson
import trio
from rich.console import Console
from rich.json import JSON
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as Bar
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from ._arguments import UsageError, build_arguments
from ._events import Event, LogMessage, Progress, ToolInfo, ToolResult
from ._open import Connect

__all__ = ["call_main", "tools_main"]


class _Rate(ProgressColumn):
    """Progress steps per second (rich's own speed columns are for bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f}/s", style="progress.data.speed")


def _bar(console: Console) -> Bar:
    return Bar(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}"),
        console=console,
        transient=True,
    )


def _jsonl(kind: str, **fields: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps({"type": kind, **fields}) + b"\n")
    sys.stdout.flush()


def _event_json(event: Event) -> None:
    if isinstance(event, Progress):
        _jsonl("progress", progress=event.progress, total=event.total, message=event.message)
    elif isinstance(event, LogMessage):
        _jsonl("log", level=event.level, logger=event.logger, data=event.data)
    else:
        _jsonl(
            "result",
            content=list(event.content),
            structuredContent=event.structured,
            isError=event.is_error,
        )


def _print_log(console: Console, event: LogMessage) -> None:
    where = f" {event.logger}" if event.logger else ""
    data = event.data if isinstance(event.data, str) else orjson.dumps(event.data).decode()
    console.print(Text(f"[{event.level}]{where} ", style="dim"), Text(data), sep="", soft_wrap=True)


def _print_result(console: Console, result: ToolResult) -> None:
    if result.is_error:
        console.print(Text(result.text or "the tool reported an error", style="bold red"))
        return
    if result.structured is not None:
        console.print(JSON(orjson.dumps(result.structured).decode()), soft_wrap=True)
        return
    for block in result.content:
        if block.get("type") == "text":
            console.print(Text(str(block.get("text", ""))), soft_wrap=True)
        else:
            console.print(JSON(orjson.dumps(block).decode()))


def _elicitation(args: argparse.Namespace, console: Console, bar: Bar | None) -> Any:
    """The ``elicitation/create`` handler: a prompt per field, or a decline."""

    async def handler(params: Mapping[str, Any]) -> Mapping[str, Any]:
        if args.no_input or args.json or not sys.stdin.isatty():
            return {"action": "decline"}
        schema = params.get("requestedSchema") or {}
        fields = schema.get("properties") or {}
        if bar is not None:
            bar.stop()
        try:
            console.print(Text(str(params.get("message", "The tool asks:")), style="bold"))
            answers: dict[str, str] = {}
            for name, field in fields.items():
                default = field.get("default")
                question = field.get("title") or field.get("description") or name
                ask = partial(Prompt.ask, f"  {question}", console=console)
                if default is not None:
                    ask = partial(ask, default=str(default))
                answers[name] = str(await trio.to_thread.run_sync(ask))
        finally:
            if bar is not None:
                bar.start()
        return {
            "action": "accept",
            "content": build_arguments([f"{k}={v}" for k, v in answers.items()], None, schema),
        }

    return handler


async def call_main(args: argparse.Namespace, *, connect: Connect) -> int:
    """``flowkit call``: run the call, show its events, return the exit status."""
    console = Console(stderr=False)
    show_bar = not (args.quiet or args.json) and console.is_terminal
    bar = _bar(Console(stderr=True)) if show_bar else None
    async with connect(on_elicitation=_elicitation(args, console, bar)) as client:
        tools = {tool.name: tool for tool in await client.list_tools()}
        tool = tools.get(args.tool)
        if tool is None:
            known = ", ".join(sorted(tools)) or "none"
            raise UsageError(f"no tool {args.tool!r} on {args.where} (it has: {known})")
        arguments = build_arguments(args.pairs, args.json_args, tool.input_schema)
        async with client.call_tool(args.tool, arguments, timeout=args.timeout) as call:
            if bar is None:
                async for event in call:
                    if args.json:
                        _event_json(event)
                    elif isinstance(event, LogMessage) and not args.quiet:
                        _print_log(console, event)
            else:
                with bar:
                    task = bar.add_task(args.tool, total=None, message="")
                    async for event in call:
                        if isinstance(event, Progress):
                            bar.update(
                                task,
                                completed=event.progress,
                                total=event.total,
                                message=event.message or "",
                            )
                        elif isinstance(event, LogMessage):
                            # Through the bar's console, which draws it above the bar:
                            # another Console writes past rich's stdout proxy, and the
                            # bar's next redraw would leave a copy of itself behind.
                            _print_log(bar.console, event)
            result = await call.result()
    if not args.json:
        _print_result(console, result)
    return 1 if result.is_error else 0


def _parameters(tool: ToolInfo) -> str:
    properties = tool.input_schema.get("properties") or {}
    required = set(tool.input_schema.get("required") or ())
    parts = []
    for name, schema in properties.items():
        kind = schema.get("type", "any") if isinstance(schema, Mapping) else "any"
        kind = "|".join(kind) if isinstance(kind, list) else str(kind)
        if name in required:
            parts.append(f"{name}: {kind}")
        else:
            default = schema.get("default") if isinstance(schema, Mapping) else None
            shown = "" if default is None else f" = {orjson.dumps(default).decode()}"
            parts.append(f"[{name}: {kind}{shown}]")
    return "\n".join(parts)


async def tools_main(args: argparse.Namespace, *, connect: Connect) -> int:
    """``flowkit tools``: the server's tools as a table (or JSON)."""
    async with connect() as client:
        tools = await client.list_tools()
        server = client.server
    if args.json:
        sys.stdout.buffer.write(
            orjson.dumps(
                [
                    {
                        "name": t.name,
                        "description": t.description,
                        "inputSchema": t.input_schema,
                        **({"outputSchema": t.output_schema} if t.output_schema else {}),
                    }
                    for t in tools
                ],
                option=orjson.OPT_INDENT_2,
            )
            + b"\n"
        )
        return 0
    table = Table(title=f"{server.name or args.where} ({server.protocol_version})")
    table.add_column("tool", style="bold")
    table.add_column("parameters")
    table.add_column("description")
    for tool in tools:
        # Text, not markup: "[count: integer]" is no rich style tag.
        table.add_row(
            Text(tool.name), Text(_parameters(tool)), Text(tool.description.strip().split("\n")[0])
        )
    Console().print(table)
    return 0
