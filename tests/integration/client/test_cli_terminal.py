"""``flowkit call`` / ``flowkit tools`` as a person runs them: ``--stdio``, and a real terminal.

The terminal tests run the command on a pseudo-terminal (``os.openpty``), as
a shell would: the progress bar is drawn, and an elicitation is asked there,
one prompt per field, answered by typing.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from typing import Any

import orjson
import pytest
import trio
import trio.lowlevel

DEMO = shlex.join([sys.executable, "-m", "flowkit_http", "serve", "--stdio", "--demo"])
TARGET = shlex.join(
    [
        sys.executable,
        "-m",
        "flowkit_http",
        "serve",
        "--stdio",
        "tests.integration.client._stdio_server:server",
    ]
)
OFFICIAL = shlex.join(
    [sys.executable, "-m", "tests.integration.client._official_server", "--stdio"]
)
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


async def _flowkit(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "flowkit_http", *argv],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def _lines(out: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("era", ["auto", "2025-11-25"])
async def test_call_over_stdio_writes_the_events_and_the_result(era: str) -> None:
    with trio.fail_after(60):
        done = await _flowkit("call", "--stdio", DEMO, "ticker", "count=3", "--json", "--era", era)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stdout)
    assert [line["progress"] for line in lines[:3]] == [1, 2, 3]
    assert lines[3]["type"] == "result"
    assert lines[3]["structuredContent"] == {"count": 3}
    assert len(lines) == 4


async def test_call_over_stdio_prints_partials_and_tools_lists_the_demo() -> None:
    with trio.fail_after(60):
        called = await _flowkit(
            "call", "--stdio", DEMO, "analyze_document", "text=One two.\n\nThree four five."
        )
        listed = await _flowkit("tools", "--stdio", DEMO)
    assert called.returncode == 0, called.stderr
    out = called.stdout.decode()
    assert out.count("[info]") == 2  # one partial result per section
    assert '"words": 5' in out
    assert listed.returncode == 0, listed.stderr
    assert "flowkit-demo (2026-07-28)" in listed.stdout.decode()
    assert "[interval_ms: integer = 0]" in listed.stdout.decode()


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["call", "--stdio", "no-such-program-here", "ticker"], 3, "flowkit call: ConnectError: "
         "cannot start no-such-program-here: No such file or directory"),
        (["tools", "--stdio", f"{sys.executable} -c 'raise SystemExit(4)'"], 3,
         "exited with status 4 before negotiation ended"),
        (["call", "ticker", "count=3"], 2, "flowkit call: expected an http:// or https:// URL, "
         "got 'ticker' (--stdio COMMAND launches a server)"),
        (["call", "--stdio", DEMO], 2, "flowkit call: expected the tool's name after the server"),
        (["call", "--stdio", " ", "ticker"], 2, "flowkit call: --stdio needs the server's command"),
        (["call", "--stdio", DEMO, "-H", "A: b", "ticker"], 2,
         "flowkit call: --header is for HTTP servers; a stdio server gets no headers"),
        (["tools", "--stdio", DEMO, "extra"], 2, "flowkit tools: unexpected arguments: extra"),
        (["call", "--stdio", DEMO, "nope"], 2, "flowkit call: no tool 'nope' on "),
    ],
)  # fmt: skip
async def test_bad_commands_are_one_line_and_an_exit_status(
    argv: list[str], status: int, message: str
) -> None:
    with trio.fail_after(60):
        done = await _flowkit(*argv)
    assert done.returncode == status
    err = done.stderr.decode()
    mine = [line for line in err.splitlines() if line.startswith("flowkit ")]
    assert len(mine) == 1, err
    assert message in mine[0]
    assert "Traceback" not in err


async def test_tool_error_over_stdio_exits_one_and_a_dying_server_three() -> None:
    with trio.fail_after(60):
        died = await _flowkit("call", "--stdio", TARGET, "die", "status=5", "--json")
    assert died.returncode == 3
    assert _lines(died.stdout)[-1]["error"] == "StreamCut"
    assert b"exited with status 5" in died.stderr
    assert b"Traceback" not in died.stderr


async def test_ctrl_c_over_stdio_cancels_the_call_and_stops_the_server() -> None:
    read, write = os.pipe()  # the client's stderr, which its server inherits
    with trio.fail_after(30):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "flowkit_http", "call", "--stdio", TARGET, "forever", "--json"],
            stdout=subprocess.PIPE,
            stderr=write,
        )
        os.close(write)
        assert process.stdout is not None
        first = await process.stdout.receive_some(4096)
        assert b'"type":"progress"' in first
        err = b""
        async with trio.open_nursery() as nursery, trio.lowlevel.FdStream(read) as stderr:

            async def drain() -> None:
                assert process.stdout is not None
                while await process.stdout.receive_some(65536):
                    pass

            nursery.start_soon(drain)
            process.send_signal(signal.SIGINT)
            status = await process.wait()
            # EOF on the pipe: the server, which shares it, has exited too.
            while chunk := await stderr.receive_some(4096):
                err += chunk
    assert status == 130
    text = err.decode()
    assert "flowkit: cancelled" in text
    assert text.count("forever stopped after") == 1
    assert "Traceback" not in text


class Terminal:
    """A pseudo-terminal: the child's stdin, stdout and stderr; we hold the master end."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self._stream = trio.lowlevel.FdStream(self.master)
        self.screen = b""

    async def until(self, pattern: bytes) -> None:
        while pattern not in _ANSI.sub(b"", self.screen):
            self.screen += await self._read()

    async def to_end(self) -> bytes:
        while chunk := await self._read():
            self.screen += chunk
        return self.screen

    async def _read(self) -> bytes:
        try:
            return await self._stream.receive_some(65536)
        except (OSError, trio.BrokenResourceError):  # EIO: every slave end is closed
            return b""

    async def type(self, text: str) -> None:
        await self._stream.send_all(text.encode())

    async def aclose(self) -> None:
        await self._stream.aclose()


async def _on_terminal(*argv: str, answer: str | None) -> tuple[int, str, bytes]:
    """Run ``flowkit ARGV`` on a terminal; its status, the text shown, the raw bytes."""
    terminal = Terminal()
    try:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "flowkit_http", *argv],
            stdin=terminal.slave,
            stdout=terminal.slave,
            stderr=terminal.slave,
            env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1", "TERM": "xterm"},
        )
        os.close(terminal.slave)
        if answer is not None:
            await terminal.until(b"What is your name?")
            await terminal.until(b"Name")
            await terminal.type(answer + "\r")
        raw = await terminal.to_end()
        text = _ANSI.sub(b"", raw).decode(errors="replace")
        return await process.wait(), text, raw
    finally:
        await terminal.aclose()


@pytest.mark.parametrize(
    ("tool", "era", "shown"),
    [
        ("ask", "2025-11-25", '"name": "Ada"'),  # elicitation/create on the pipe
        ("greet", "2026-07-28", '"greeting": "hello Ada"'),  # an input_required result
    ],
)
async def test_an_elicitation_is_asked_at_the_terminal_and_the_answer_is_sent(
    tool: str, era: str, shown: str
) -> None:
    with trio.fail_after(60):
        status, screen, _ = await _on_terminal(
            "call", "--stdio", OFFICIAL, tool, "--era", era, answer="Ada"
        )
    assert status == 0, screen
    assert shown in screen


async def test_no_input_declines_at_the_terminal_without_asking() -> None:
    with trio.fail_after(60):
        status, screen, _ = await _on_terminal(
            "call", "--stdio", OFFICIAL, "ask", "--era", "2025-11-25", "--no-input", answer=None
        )
    assert status == 0, screen
    assert "What is your name?" not in screen
    assert '"action": "decline"' in screen


async def test_the_progress_bar_is_drawn_on_a_terminal_and_the_result_stays() -> None:
    with trio.fail_after(60):
        status, screen, _ = await _on_terminal(
            "call", "--stdio", DEMO, "ticker", "count=40", "interval_ms=25", answer=None
        )
    assert status == 0, screen
    assert re.search(r"ticker .*\d+/40", screen), screen  # the bar: name, N of total
    assert '"count": 40' in screen


async def test_logs_print_above_the_live_bar_never_after_a_stale_copy_of_it() -> None:
    with trio.fail_after(60):
        status, screen, raw = await _on_terminal(
            "call", "--stdio", DEMO, "sensor_windows", "readings=60", "interval_ms=20", answer=None
        )
    assert status == 0, screen
    assert screen.count("[info] sensor_windows") >= 8  # partial results, as they came
    # Each log is printed after the bar is erased (rich's live console): a log
    # written past it lands right behind the bar's text, which stays on screen.
    styled_only = re.sub(rb"\x1b\[[0-9;]*m", b"", raw)  # keep the cursor moves and erases
    assert not re.search(rb"readings\[info\]", styled_only), raw[-2000:]
