"""The demo server behind ``flowkit serve --demo``.

Four tools, one per thing worth seeing (a fifth with ``--redis``):

* ``ticker`` — lossless progress: every step delivered, at the client's pace;
* ``analyze_document`` — partial results streamed as logs, then a summary;
* ``sensor_feed`` — a lossy pipeline: a fast source through drop-oldest and
  adaptive batching, reporting how much it dropped.
* ``sensor_windows`` — windows per key: a rolling average per sensor
  (``flowkit.sliding_window`` keyed by sensor), each closed window streamed
  to the client as a partial result, then a summary.

Beside the tools, the streaming-native resource and a prompt:

* ``sensor://demo/room`` — a live resource: a simulated room sensor (10
  readings/s) through ``flowkit.sliding_window`` as a rolling 2 s mean, a
  new one every 0.5 s; reading it returns the newest mean, and subscribers
  get ``resources/updated`` at most once a second;
* ``room_report(unit)`` — a prompt embedding the room's current reading,
  ``unit`` completed from ``celsius``/``fahrenheit``.

And a fifth tool:

* ``tail_stream`` (only with ``--redis URL``) — a live Redis stream through
  ``flowkit.latest``: a slow client gets the latest entry, and the result
  reports how many it skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, Literal, TypeVar

import orjson
import trio
import trio.lowlevel

import flowkit
from flowkit.mcp import embedded_resource, prompt_message

from ._items import Partial, Progress, Result, ToolPipeline
from ._server import MCPServer

__all__ = ["server"]

_T = TypeVar("_T")

server = MCPServer(
    name="flowkit-demo",
    instructions=(
        "Demo tools streaming progress and partial results from flowkit pipelines; "
        "a live resource (sensor://demo/room) and a prompt (room_report)."
    ),
)


@server.tool(
    output_schema={
        "type": "object",
        "properties": {"count": {"type": "integer"}},
        "required": ["count"],
    }
)
async def ticker(count: int, interval_ms: int = 0) -> AsyncIterator[Progress | Result]:
    """Emit `count` ticks, one progress notification each, every one delivered."""
    # Tick i is due at start + i * interval (sleep_until, not sleep: time
    # spent emitting a tick must not push every later tick back), and
    # flowkit's shared-deadline sleep: thousands of tickers cost one trio deadline.
    start = trio.current_time()
    for i in range(1, count + 1):
        if interval_ms > 0:
            await flowkit.sleep_until(start + i * interval_ms / 1000)
        yield Progress(f"tick {i}/{count}", total=count)
    yield Result(structured={"count": count}, text=f"ticked {count} times")


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
# Runs of terminators; a run ends a sentence when whitespace or the end
# follows. Matching that in one pattern (``[.!?]+(?:\s|$)``) backtracks
# through the whole run at every start position: quadratic, 32 s of frozen
# server on 80 KB of "." followed by a letter. Maximal runs are found once
# each (the scan resumes after a run), so this is linear.
_TERMINATORS = re.compile(r"[.!?]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)


def _sections(text: str) -> list[tuple[str, str]]:
    """Split on markdown headings, else on blank lines: (title, body) pairs."""
    if re.search(r"^#{1,6} ", text, flags=re.MULTILINE):
        parts = re.split(r"^(#{1,6} .*)$", text, flags=re.MULTILINE)
        out = [("(preamble)", parts[0])] if parts[0].strip() else []
        out += [(parts[i].lstrip("#").strip(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]
        return out
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    return [(f"section {i}", block) for i, block in enumerate(blocks, 1)]


def _sentences(text: str) -> int:
    """Sentence ends: runs of ``.!?`` followed by whitespace or the end of ``text``."""
    end = len(text)
    return sum(
        1 for run in _TERMINATORS.finditer(text) if run.end() == end or text[run.end()].isspace()
    )


def _findings(index: int, title: str, body: str) -> dict[str, Any]:
    words = [w.lower() for w in _WORD.findall(body)]
    top = Counter(w for w in words if w not in _STOPWORDS).most_common(5)
    return {
        "section": index,
        "title": title,
        "words": len(words),
        "sentences": _sentences(body.strip()),
        "top_words": [[word, n] for word, n in top],
    }


_INLINE = 64 * 1024  # characters analysed on the event loop; more go to a thread


async def _off_loop(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)``, in a worker thread when a text among ``args`` is large.

    A thread shares the GIL, but the interpreter hands it back to the event
    loop every few milliseconds (``sys.getswitchinterval``) between
    bytecodes, so a long analysis no longer freezes the server; only one C
    call (a single ``findall``) still runs uninterrupted, ~0.1 s on the
    largest body accepted. Small texts stay on the loop: a thread hop costs
    more than analysing them.
    """
    if not any(isinstance(a, str) and len(a) > _INLINE for a in args):
        await trio.lowlevel.checkpoint()
        return fn(*args)
    return await trio.to_thread.run_sync(partial(fn, *args), abandon_on_cancel=True)


@server.tool(
    output_schema={
        "type": "object",
        "properties": {
            "sections": {"type": "integer"},
            "words": {"type": "integer"},
            "sentences": {"type": "integer"},
            "top_words": {"type": "array"},
            # One `type` per property (absent, not null, for an empty document):
            # MCP Inspector 2.x flags type arrays as unportable.
            "longest_section": {"type": "string"},
        },
        "required": ["sections", "words", "sentences", "top_words"],
    }
)
async def analyze_document(text: str) -> AsyncIterator[Partial | Result]:
    """Analyse a document section by section, streaming per-section findings."""
    sections = await _off_loop(_sections, text)
    totals: Counter[str] = Counter()
    words = sentences = 0
    longest: tuple[int, str] | None = None
    for i, (title, body) in enumerate(sections, 1):
        found = await _off_loop(_findings, i, title, body)
        words += found["words"]
        sentences += found["sentences"]
        totals.update({w: n for w, n in found["top_words"]})
        if longest is None or found["words"] > longest[0]:
            longest = (found["words"], title)
        message = f"{title}: {found['words']} words, {found['sentences']} sentences"
        yield Partial(found, message=message, total=len(sections), logger="analyze_document")
    summary = {
        "sections": len(sections),
        "words": words,
        "sentences": sentences,
        "top_words": [[w, n] for w, n in totals.most_common(5)],
    }
    if longest is not None:
        summary["longest_section"] = longest[1]
    yield Result(
        structured=summary,
        text=f"{len(sections)} sections, {words} words, {sentences} sentences",
    )


async def _readings(count: int) -> AsyncIterator[float]:
    for i in range(count):
        yield float((i * 37) % 101)
        if i % 64 == 63:
            await trio.lowlevel.checkpoint()  # a burst, then let others run


def _summarize(dropper: flowkit.Operator[float, float], readings: int, consume_ms: float) -> Any:
    async def summarize(
        receive: trio.abc.ReceiveChannel[list[float]],
        send: trio.abc.SendChannel[Progress | Result],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        delivered = batches = 0
        async with receive, send:
            task_status.started()
            async for batch in receive:
                delivered += len(batch)
                batches += 1
                mean = sum(batch) / len(batch)
                await send.send(Progress(f"{len(batch)} readings, mean {mean:.1f}"))
                await trio.sleep(consume_ms / 1000)  # a slow consumer
            dropped = dropper.statistics().dropped
            structured = {
                "readings": readings,
                "delivered": delivered,
                "dropped": dropped,
                "batches": batches,
            }
            text = f"{delivered} of {readings} readings in {batches} batches; {dropped} dropped"
            await send.send(Result(structured=structured, text=text))

    return summarize


@server.tool(policy="conflate")
def sensor_feed(readings: int = 10000, consume_ms: float = 1.0) -> ToolPipeline:
    """A fast sensor through drop-oldest and adaptive batching; reports drops."""
    dropper: flowkit.Operator[float, float] = flowkit.drop_oldest(64)
    return ToolPipeline(
        _readings(readings),
        dropper,
        flowkit.adaptive_batch(32),
        _summarize(dropper, readings, consume_ms),
    )


async def _sensor_readings(
    sensors: int, readings: int, interval_ms: float
) -> AsyncIterator[tuple[str, float]]:
    """Reading ``i`` from sensor ``i % sensors``, due at ``i * interval_ms``."""
    start = trio.current_time()
    for i in range(readings):
        if interval_ms > 0:
            await flowkit.sleep_until(start + i * interval_ms / 1000)
        elif i % 64 == 63:
            await trio.lowlevel.checkpoint()
        yield f"sensor-{i % sensors}", float(20 + (i * 37) % 11)


def _window_partial(t0: float) -> Callable[[flowkit.Window[tuple[str, float]]], Partial]:
    def partial_result(window: flowkit.Window[tuple[str, float]]) -> Partial:
        values = [value for _, value in window.items]
        mean = sum(values) / len(values)
        data = {
            "sensor": window.key,
            "start_ms": round((window.start - t0) * 1000, 3),
            "end_ms": round((window.end - t0) * 1000, 3),
            "readings": len(values),
            "mean": round(mean, 3),
            "partial": window.partial,
        }
        message = f"{window.key}: mean {mean:.2f} over {len(values)} readings"
        return Partial(data, message=message, logger="sensor_windows")

    return partial_result


async def _window_summary(
    receive: trio.abc.ReceiveChannel[Partial],
    send: trio.abc.SendChannel[Partial | Result],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Forward each window's partial result, then the last mean per sensor."""
    windows = 0
    latest: dict[str, float] = {}
    async with receive, send:
        task_status.started()
        async for partial in receive:
            windows += 1
            latest[partial.data["sensor"]] = partial.data["mean"]
            await send.send(partial)
        structured = {"windows": windows, "latest_mean": dict(sorted(latest.items()))}
        text = f"{windows} windows over {len(latest)} sensors"
        await send.send(Result(structured=structured, text=text))


@server.tool(
    output_schema={
        "type": "object",
        "properties": {
            "windows": {"type": "integer"},
            "latest_mean": {"type": "object", "additionalProperties": {"type": "number"}},
        },
        "required": ["windows", "latest_mean"],
    }
)
def sensor_windows(
    sensors: int = 4,
    readings: int = 200,
    interval_ms: float = 10.0,
    window_ms: float = 500.0,
    every_ms: float = 250.0,
) -> ToolPipeline:
    """A rolling average per sensor: each closed window is a partial result."""
    if not 1 <= sensors <= 1000:
        raise ValueError(f"sensors must be between 1 and 1000, got {sensors}")
    if not 0 <= readings <= 1_000_000:
        raise ValueError(f"readings must be between 0 and 1000000, got {readings}")
    if not 0 <= interval_ms <= 60_000:
        raise ValueError(f"interval_ms must be between 0 and 60000, got {interval_ms}")
    if not 0 < every_ms <= window_ms <= 3_600_000:
        raise ValueError(
            f"need 0 < every_ms <= window_ms <= 3600000, got every_ms={every_ms}, "
            f"window_ms={window_ms}"
        )
    windows = flowkit.sliding_window(
        window_ms / 1000, every_ms / 1000, key=lambda reading: reading[0]
    )
    return ToolPipeline(
        _sensor_readings(sensors, readings, interval_ms),
        flowkit.buffer(256),
        windows,
        flowkit.map(_window_partial(trio.current_time())),
        _window_summary,
    )


ROOM = "sensor://demo/room"
_ROOM_READINGS_PER_SECOND = 10


async def _room_readings() -> AsyncIterator[float]:
    """A simulated room thermometer: a slow drift plus a little noise, 10 readings/s."""
    start = trio.current_time()
    i = 0
    while True:
        await flowkit.sleep_until(start + i / _ROOM_READINGS_PER_SECOND)
        yield round(21.0 + 1.5 * ((i // 50) % 4) / 3 + ((i * 37) % 7 - 3) / 20, 2)
        i += 1


def _room_mean(window: flowkit.Window[float]) -> dict[str, Any]:
    return {
        "celsius": round(sum(window.items) / len(window.items), 3),
        "readings": len(window.items),
        "window_s": round(window.end - window.start, 3),
    }


@server.live_resource(ROOM, interval=1.0, mime_type="application/json", title="Room temperature")
def room() -> ToolPipeline:
    """The room's temperature: a rolling 2 s mean of a simulated sensor, renewed every 0.5 s."""
    return ToolPipeline(_room_readings(), flowkit.sliding_window(2.0, 0.5), flowkit.map(_room_mean))


_room = server.live_resources[-1]


@server.prompt(title="Room report")
async def room_report(unit: Literal["celsius", "fahrenheit"] = "celsius") -> list[Any]:
    """Ask for a short report on the room's current temperature (embeds the live reading)."""
    reading = await _room.read()
    celsius = reading["celsius"]
    shown = f"{celsius:.1f} °C" if unit == "celsius" else f"{celsius * 9 / 5 + 32:.1f} °F"
    return [
        prompt_message(
            f"The room sensor reads {shown} (a rolling mean). Write a one-line report on "
            f"whether the room is comfortable, in {unit}."
        ),
        prompt_message(
            embedded_resource(
                ROOM, text=orjson.dumps(reading).decode(), mime_type="application/json"
            )
        ),
    ]


# --- Registered only by ``flowkit serve --demo --redis URL`` (issue 17) ---


def _tail_redis(url: str, after: str, count: int) -> Any:
    """A stage reading the stream named by its one input item, from ``after``, ``count`` entries.

    A stage, not a source: it owns the connection's nursery in its own task
    (an async generator must not yield inside a nursery it opened).
    """
    from flowkit_redis import RedisClient

    async def tail(
        receive: trio.abc.ReceiveChannel[str],
        send: trio.abc.SendChannel[dict[str, str]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with receive, send:
            task_status.started()
            stream = await receive.receive()
            seen, last = 0, after
            async with RedisClient.connect(url) as client:
                try:
                    while seen < count:
                        reply = await client.run(_xread(stream, last, min(256, count - seen)))
                        for entries in (reply or {}).values():
                            for entry in entries:
                                last = entry.identifier.decode()
                                fields = {
                                    k.decode(errors="replace"): v.decode(errors="replace")
                                    for k, v in entry.field_values.items()
                                }
                                await send.send({"id": last, **fields})
                                seen += 1
                except trio.BrokenResourceError:
                    return

    return tail


def _xread(stream: str, after: str, count: int) -> Callable[[Any], Awaitable[Any]]:
    return lambda redis: redis.xread({stream: after}, count=count, block=500)


def _tail_report(skipper: flowkit.Operator[Any, Any], count: int, consume_ms: float) -> Any:
    async def report(
        receive: trio.abc.ReceiveChannel[dict[str, str]],
        send: trio.abc.SendChannel[Progress | Result],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        delivered = 0
        last: dict[str, str] = {}
        async with receive, send:
            task_status.started()
            async for entry in receive:
                delivered += 1
                last = entry
                await send.send(Progress(f"entry {entry['id']}", total=count))
                await trio.sleep(consume_ms / 1000)  # the client's pace
            skipped = skipper.statistics().dropped
            structured = {"entries": delivered + skipped, "delivered": delivered,
                          "skipped": skipped, "last": last}  # fmt: skip
            text = f"{delivered} of {delivered + skipped} entries delivered; {skipped} skipped"
            await send.send(Result(structured=structured, text=text))

    return report


def add_redis_tools(target: MCPServer, url: str) -> None:
    """Register ``tail_stream``, which watches a Redis stream live (``--demo --redis URL``)."""

    @target.tool(policy="conflate")
    def tail_stream(
        stream: str, count: int = 100, after: str = "$", consume_ms: float = 0.0
    ) -> ToolPipeline:
        """Tail a Redis stream: a slow client gets the latest entry; reports what was skipped."""
        if not stream:
            raise ValueError("stream must name a Redis stream")
        if not 1 <= count <= 1_000_000:
            raise ValueError(f"count must be between 1 and 1000000, got {count}")
        if not 0 <= consume_ms <= 60_000:
            raise ValueError(f"consume_ms must be between 0 and 60000, got {consume_ms}")
        skipper: flowkit.Operator[Any, Any] = flowkit.latest()
        return ToolPipeline(
            [stream],
            _tail_redis(url, after, count),
            skipper,
            _tail_report(skipper, count, consume_ms),
        )
