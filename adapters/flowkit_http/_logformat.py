"""Log lines as text or JSON, each telling which call it belongs to.

``flowkit serve --log-format text|json`` formats every line of the standard
library's ``logging`` (flowkit's, hypercorn's, the tools' own). A line logged
while a tool call runs -- by the tool, its pipeline stages (child tasks
inherit the context) or the runner -- carries the call's correlation:

* ``request``: the JSON-RPC id of the ``tools/call``;
* ``session``: a tag of the ``Mcp-Session-Id`` -- the first 12 hex digits of
  its SHA-256, never the id itself, which is a credential for the session.

Text (the default) appends ``[session=… request=…]`` to such lines; JSON
writes one object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
``message``, ``session`` and ``request`` when known, ``exception`` (the
formatted traceback) when there is one.

The correlation lives in context variables, set once per call in the call's
own task (:func:`correlate`), so it costs nothing per log line that does not
ask for it and nothing per event.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from contextvars import ContextVar
from typing import Any, Literal

import orjson

from flowkit.mcp import RequestId

__all__ = ["LOG_FORMATS", "JSONFormatter", "TextFormatter", "configure", "correlate"]

LOG_FORMATS = ("text", "json")
LogFormat = Literal["text", "json"]

_session: ContextVar[str | None] = ContextVar("flowkit_http_session", default=None)
_request: ContextVar[RequestId | None] = ContextVar("flowkit_http_request", default=None)


def session_tag(session_id: str) -> str:
    """A short stable tag of a session id that does not reveal it."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


def correlate(session_id: str | None, request_id: RequestId | None) -> None:
    """Tag the log lines of the current task (and the tasks it starts) with a call."""
    _session.set(session_tag(session_id) if session_id is not None else None)
    _request.set(request_id)


def _correlation() -> dict[str, Any]:
    found: dict[str, Any] = {}
    session, request = _session.get(), _request.get()
    if session is not None:
        found["session"] = session
    if request is not None:
        found["request"] = request
    return found


#: The text format of ``flowkit serve``'s log lines (``--log-format text``).
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """``LEVEL name: message``, plus ``[session=… request=…]`` inside a call."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        found = _correlation()
        if not found:
            return text
        tags = " ".join(f"{key}={value}" for key, value in found.items())
        head, newline, rest = text.partition("\n")  # keep a traceback below the tags
        return f"{head} [{tags}]{newline}{rest}"


class JSONFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_correlation(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(log_format: LogFormat) -> None:
    """Format every handler of the root logger as ``log_format``."""
    formatter: logging.Formatter = JSONFormatter() if log_format == "json" else TextFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
