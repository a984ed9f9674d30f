"""RateLimitedLog: first line in full, repeats folded into one summary per interval (MockClock).

Also: tool failures reach the log, and the access log writes one line per request.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from flowkit_http import MCPApp, MCPServer
from flowkit_http._access import AccessLog
from flowkit_http._logging import RateLimitedLog

from ._raw import call, initialize, messages, sse_events
from ._serving import serving

NAME = "tests.ratelimited"


class _Records:
    """The call phase's records, read at each use (caplog.records is per phase)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def __getitem__(self, index: int) -> logging.LogRecord:
        return self.caplog.records[index]

    def texts(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records]


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> _Records:
    caplog.set_level(logging.DEBUG, logger=NAME)
    return _Records(caplog)


def _limiter() -> RateLimitedLog:
    return RateLimitedLog(logging.getLogger(NAME), interval=10.0)


async def test_first_line_in_full_then_one_summary_per_interval(
    autojump_clock: trio.testing.MockClock, records: _Records
) -> None:
    log = _limiter()
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        error = exc
    for _ in range(100):
        log.log(logging.ERROR, "tool 'x' failed: ValueError", "tool %r failed", "x", exc_info=error)
        await trio.sleep(0.01)
    assert records.texts() == ["tool 'x' failed"]
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is error
    await trio.sleep(11)  # past the end of the window
    assert records.texts() == [
        "tool 'x' failed",
        "repeated in the last 10 s: tool 'x' failed: ValueError x99",
    ]
    assert records[1].levelno == logging.ERROR
    assert records[1].exc_info is None


async def test_counts_by_reason_in_one_line(
    autojump_clock: trio.testing.MockClock, records: _Records
) -> None:
    log = _limiter()
    for i in range(30):
        log.log(logging.WARNING, "refused (429)", "refused %d", i)
        if i % 3 == 0:
            log.log(logging.ERROR, "refused (503)", "full %d", i)
    assert records.texts() == ["refused 0", "full 0"]
    await trio.sleep(11)
    assert records.texts()[2:] == ["repeated in the last 10 s: refused (429) x29; refused (503) x9"]
    assert records[2].levelno == logging.ERROR  # the most severe of the folded lines


async def test_a_continuing_flood_is_summarised_every_interval_then_logged_afresh(
    autojump_clock: trio.testing.MockClock, records: _Records
) -> None:
    log = _limiter()
    start = trio.current_time()
    for second in range(35):  # 35 s of one line per second
        await trio.sleep_until(start + second)
        log.log(logging.WARNING, "r", "line %d", second)
    await trio.sleep_until(start + 60)  # quiet
    assert records.texts() == [
        "line 0",
        "repeated in the last 10 s: r x9",
        "repeated in the last 10 s: r x10",
        "repeated in the last 10 s: r x10",
        "repeated in the last 10 s: r x5",
    ]
    log.log(logging.WARNING, "r", "back")  # after a quiet interval: in full again
    assert records.texts()[-1] == "back"


async def test_a_summary_is_never_later_than_the_next_line(
    autojump_clock: trio.testing.MockClock, records: _Records
) -> None:
    """A line logged once its window is due closes the window first: order is kept."""
    clock = trio.current_time()
    times = iter([clock, clock + 1, clock + 10, clock + 10])
    log = RateLimitedLog(logging.getLogger(NAME), interval=10.0, clock=lambda: next(times))
    log.log(logging.INFO, "r", "first")
    log.log(logging.INFO, "r", "second")  # folded
    log.log(logging.INFO, "other", "third")  # the window is due: summary first
    assert records.texts() == ["first", "repeated in the last 10 s: r x1", "third"]


def test_the_pending_summary_is_written_when_the_run_ends(
    records: _Records,
) -> None:
    log = _limiter()

    async def flood() -> None:
        for _ in range(5):
            log.log(logging.ERROR, "boom", "boom")

    trio.run(flood, clock=trio.testing.MockClock())
    assert records.texts() == ["boom", "repeated in the last 10 s: boom x4"]
    # A later run starts afresh: its first line is in full.
    trio.run(flood, clock=trio.testing.MockClock())
    assert records.texts()[2:] == ["boom", "repeated in the last 10 s: boom x4"]


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        RateLimitedLog(logging.getLogger(NAME), interval=0)


async def test_a_failing_tool_is_logged_with_its_traceback_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client gets isError; the server log gets the traceback, repeats folded."""
    caplog.set_level(logging.INFO, logger="flowkit_http")
    server = MCPServer("failing")

    @server.tool
    async def explode() -> str:
        """Raise."""
        raise KeyError("no such sensor")

    @server.tool
    async def unserialisable() -> dict[str, Any]:
        """Return a value JSON cannot carry."""
        return {"values": {1, 2}}

    answers = []
    with trio.fail_after(20):
        async with serving(MCPApp(server)) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            headers = await initialize(client, url)
            for i, name in enumerate(["explode", "explode", "unserialisable"]):
                response = await client.post(url, content=call(i, name, {}), headers=headers)
                sent = messages(sse_events(response.content))
                answers.append(sent[-1]["result"]["isError"])
    assert answers == [True, True, True]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    # The second failure of explode is folded (a summary follows later).
    assert [r.getMessage() for r in errors if "repeated" not in r.getMessage()] == [
        "tool 'explode' failed: KeyError: 'no such sensor'",
        "tool 'unserialisable' failed: TypeError: structuredContent is not a JSON value "
        "(Type is not JSON serializable: set); a tool may return JSON types (dict with str "
        "keys, list, tuple, str, int, float, bool, None), dataclasses, datetime, date, time, "
        "UUID and Enum members",
    ]
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], KeyError)
    assert "raise KeyError" in logging.Formatter().formatException(errors[0].exc_info)


async def test_access_log_one_line_per_request_with_the_bytes_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="flowkit_http.access")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for chunk in (b"data: 1\n\n", b"data: 2\n\n"):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        # "/gone": the client left before any response (a stateless-era cancel)

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    logged = AccessLog(app)
    for path in ("/stream", "/gone"):
        scope = {"type": "http", "method": "POST", "path": path, "http_version": "1.1"}
        await logged({**scope, "client": ("127.0.0.1", 5000)}, receive, send)
    await logged({"type": "lifespan"}, receive, send)  # not a request: not logged
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert re.fullmatch(r'127\.0\.0\.1:5000 "POST /stream HTTP/1\.1" 200 18 \d\.\d{6}s', lines[0])
    assert re.fullmatch(r'127\.0\.0\.1:5000 "POST /gone HTTP/1\.1" - 0 \d\.\d{6}s', lines[1])
