"""What a tool's pipeline emits, and how a tool names its pipeline.

A tool function returns one of:

* an **async iterable** (the usual case: an ``async def`` with ``yield``), a
  one-stage pipeline;
* a :class:`ToolPipeline` ``(source, *stages)``, run with
  :func:`flowkit.open_pipeline` so the stages get flowkit's fusion, chunked
  hops and honest error propagation;
* anything else (from a plain or ``async def`` function): the result itself.

Each item the pipeline yields is one step of progress. Plain items become
``notifications/progress`` (the message is the item if it is a string, else
its compact JSON); four marker types say more:

* :class:`Progress` — a step with an explicit message, ``total`` and/or
  ``progress`` value;
* :class:`Partial` — a partial result: a step *and* a
  ``notifications/message`` log carrying ``data``;
* :class:`Result` — the reduction, i.e. the final result. A pipeline that
  never emits one ends with ``{"items": <count>}`` as its structured result.
  Its ``content`` may hold every content type the spec defines (build them
  with ``flowkit.mcp.text_content``, ``image_content``, ``audio_content``,
  ``resource_link``, ``embedded_resource``);
* :class:`CloseStream` — not a step: ask the server to end the HTTP response
  carrying the call now, while the call goes on ("SSE polling").

These are markers rather than callbacks so that a pipeline stays a pure
stream of values: operators such as ``map`` can produce them, and a tool's
logic can be tested with :func:`flowkit.open_pipeline` alone, no server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from flowkit import Stage

__all__ = ["CloseStream", "Partial", "Progress", "Result", "ToolPipeline"]


@attrs.frozen
class Progress:
    """One step of progress with a chosen message.

    Attributes:
        message: human-readable status (``notifications/progress`` message).
        total: how many steps there will be, if known; it sticks for later
            items that do not give one.
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

    Attributes:
        data: any JSON-serialisable value (the log's ``data``). Never put
            secrets here: it goes to the client.
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
class Result:
    """The tool's final result (its reduction); the last one emitted wins.

    Attributes:
        structured: ``structuredContent``; it must match the tool's output
            schema when one is declared. It is also appended as a JSON text
            block, as the spec recommends.
        text: a text block put first, for humans and text-only clients.
        content: further content blocks (see ``flowkit.mcp.text_content``...).
    """

    structured: Mapping[str, Any] | None = None
    text: str | None = None
    content: Sequence[Mapping[str, Any]] = ()


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
