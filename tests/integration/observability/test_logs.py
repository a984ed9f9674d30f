"""Issue 14, item 6 (in part): ``--log-format text|json`` with call correlation.

A line logged while a tool call runs carries the call's JSON-RPC id and a tag
of its session (never the session id itself, a credential).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterator

import httpx
import orjson
import pytest

from flowkit_http._logformat import JSONFormatter, TextFormatter
from tests.integration.http._raw import call, initialize

from ._app import observed, run_call, session
from ._processes import ROOT, free_port, process
from ._served import server


class _Lines(logging.Handler):
    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def text_lines() -> Iterator[_Lines]:
    handler = _Lines(TextFormatter())
    logger = logging.getLogger("tests.noted")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _tag(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


async def test_text_lines_of_a_call_carry_its_request_and_session_tag(
    text_lines: _Lines,
) -> None:
    async with observed(server) as (_base, client, _probe):
        headers = await session(client)
        await run_call(client, headers, 41, "noted", {"text": "hello"})
    logging.getLogger("tests.noted").warning("outside any call")
    sid = headers["mcp-session-id"]
    assert text_lines.lines == [
        f"WARNING tests.noted: noting hello [session={_tag(sid)} request=41]",
        "WARNING tests.noted: outside any call",
    ]


def test_json_lines_are_one_object_each_with_the_traceback() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("twice",), sys.exc_info()
        )
    line = orjson.loads(JSONFormatter().format(record))
    assert line["level"] == "ERROR"
    assert line["logger"] == "x"
    assert line["message"] == "failed twice"
    assert "ValueError: bad" in line["exception"]
    assert line["time"].endswith("+00:00")
    assert "session" not in line
    assert "request" not in line


async def test_flowkit_serve_log_format_json_end_to_end() -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "flowkit_http",
        "serve",
        "tests.integration.observability._served:server",
        "--port",
        str(port),
        "--log-format",
        "json",
    ]
    base = f"http://127.0.0.1:{port}"
    async with (
        process(command, ready=b"serving MCP at", cwd=ROOT) as output,
        httpx.AsyncClient(timeout=10) as client,
    ):
        headers = await initialize(client, f"{base}/mcp")
        response = await client.post(
            f"{base}/mcp", content=call(5, "noted", {"text": "json"}), headers=headers
        )
        assert b'"result"' in response.content
    lines = [orjson.loads(line) for line in output.text().splitlines() if line.startswith("{")]
    (noted,) = [line for line in lines if line["logger"] == "tests.noted"]
    assert noted["message"] == "noting json"
    assert noted["request"] == 5
    assert noted["session"] == _tag(headers["mcp-session-id"])
    assert headers["mcp-session-id"] not in output.text()
    # every logger, not only the tool's: the server's own shutdown line too
    assert any(line["logger"] == "flowkit_http" for line in lines), lines
