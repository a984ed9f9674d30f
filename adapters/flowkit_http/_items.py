"""What a tool's pipeline emits, and how a tool names its pipeline.

A tool function returns one of:

* an **async iterable** (the usual case: an ``async def`` with ``yield``), a
  one-stage pipeline;
* a :class:`ToolPipeline` ``(source, *stages)``, run with
  :func:`flowkit.open_pipeline` so the stages get flowkit's fusion, chunked
  hops and honest error propagation;
* anything else (from a plain or ``async def`` function): the result itself.

Each item the pipeline yields, but a ``Result`` or a ``CloseStream``, is
one step of progress, whatever its type: a plain item, a ``Progress`` and a
``Partial`` count alike, so the progress value is the number of steps so far
(unless a ``Progress`` sets it), and a declared ``total`` counts the same
steps. A step past the total is reported without one, never as "5 of 4".
Plain items become ``notifications/progress`` (the message is the item if it
is a string, else its compact JSON); four marker types say more:

* :class:`Progress` — a step with an explicit message, ``total`` and/or
  ``progress`` value;
* :class:`Partial` — a partial result: a step whose progress message is its
  ``message`` (or a rendering of ``data``), *and* a ``notifications/message``
  log carrying ``data`` when the client asked for logs;
* :class:`~flowkit.mcp.Result` — the reduction, i.e. the final result. A
  pipeline that never emits one ends with ``{"items": <count>}`` as its
  structured result. Its ``content`` may hold every content type the spec
  defines (build them with ``flowkit.mcp.text_content``, ``image_content``,
  ``audio_content``, ``resource_link``, ``embedded_resource``);
* :class:`CloseStream` — not a step: ask the server to end the HTTP response
  carrying the call now, while the call goes on ("SSE polling").

These are markers rather than callbacks so that a pipeline stays a pure
stream of values: operators such as ``map`` can produce them, and a tool's
logic can be tested with :func:`flowkit.open_pipeline` alone, no server.
"""

from __future__ import annotations

from typing import Any

import attrs

from flowkit import Stage
from flowkit.mcp import Result

__all__ = ["CloseStream", "Partial", "Progress", "Result", "ToolPipeline"]


@attrs.frozen
class Progress:
    """One step of progress with a chosen message.

    Attributes:
        message: human-readable status (``notifications/progress`` message).
        total: how many steps there will be (every item but a ``Result`` or
            a ``CloseStream`` is one), if known; it sticks for later items
            that do not give one. A progress value beyond it is reported
            without a total.
        progress: the progress value to report, e.g. ``Progress(total=100,
            progress=50)``. It must exceed the previous value (the spec's
            rule; breaking it fails the call). Items without one advance
            the value by 1 from wherever it stands, so by default the value
            is the step count.
    """

    message: str | None = None
    total: float | None = None
    progress: float | None = None


@attrs.frozen
class Partial:
    """A partial result: a progress step plus a ``notifications/message``.

    The data travels as a log, which the client must ask for
    (``logging/setLevel`` in the 2025-11-25 era, the request's
    ``_meta["io.modelcontextprotocol/logLevel"]`` in the 2026-07-28 era); the
    message travels as the step's progress message either way. A partial the
    client asked for neither way is counted in the result's
    ``_meta["dev.flowkit/undeliveredPartials"]``.

    Attributes:
        data: a value a tool may return (JSON types, dataclasses, datetime,
            UUID, enums; see :func:`flowkit.mcp.to_call_result`); anything
            else fails the call. Never put secrets here: it goes to the client.
        message: progress message; defaults to a short rendering of ``data``.
        total: how many steps there will be, if known (as for :class:`Progress`).
        level: log level (``"info"`` passes the default threshold).
        logger: optional logger name.
    """

    data: Any
    message: str | None = None
    total: float | None = None
    level: str = "info"
    logger: str | None = None


@attrs.frozen
class CloseStream:
    """Ask the server to close the HTTP response carrying this call, early.

    "SSE polling" (SEP-1699, 2025-11-25): the server may end a call's SSE
    response before the result, and the client reconnects with ``GET`` and
    ``Last-Event-ID`` after the ``retry`` interval of the priming event. The
    call goes on meanwhile: its events are filed in the event store and
    replayed to the reconnecting client, who then follows the live stream.
    Useful to free a connection (or a proxy's slot) during a long quiet
    stretch. Everything the pipeline yielded before this marker is handed to
    the response first.

    It is a no-op where the stream cannot be resumed: in the 2026-07-28 era,
    where closing the stream *is* cancellation (the server never closes it
    early), without an event store, and when no response is attached.
    """


@attrs.frozen(init=False)
class ToolPipeline:
    """A flowkit pipeline for the runner to start: ``ToolPipeline(source, *stages)``.

    Attributes:
        source: a receive channel, async iterable or iterable.
        stages: operators, as for :func:`flowkit.open_pipeline`.
        total: the number of steps, if known (progress ``total``).
    """

    source: Any
    stages: tuple[Stage, ...]
    total: float | None

    def __init__(self, source: Any, *stages: Stage, total: float | None = None) -> None:
        self.__attrs_init__(source, stages, total)
