"""What an :class:`~flowkit_http.MCPApp` has served, read at observation time.

Theory of operation: nothing here runs per event. The operators, the outbox
and the session registry already keep counters (their ``statistics()``); a
:class:`Telemetry` adds only what ends -- once per call (its outcome and
duration, and its final outbox and stage statistics folded into per-tool
totals) and once per refused request, resume or keepalive. An observation
(:meth:`Telemetry.snapshot`, which ``/metrics`` and ``/dashboard`` both use)
adds those totals to the live statistics of the calls running now, so every
counter it reports only grows: a call's numbers move from "live" to "ended"
in one synchronous step when it finishes.

Labels stay bounded: per tool (the server's tool names), per stage (the
pipeline's stage names), per outcome, per HTTP status. Never a session or
request id, never a tool's arguments or results.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

import attrs
import trio

from flowkit import OperatorStatistics, Pipeline
from flowkit.mcp import Endpoint

from ._outbox import Outbox

__all__ = [
    "DURATION_BUCKETS",
    "AppStatistics",
    "CallError",
    "Telemetry",
    "ToolStatistics",
]


# What telemetry reads of the app and its calls, as protocols: the app owns a
# Telemetry, so importing _asgi here would be an import cycle.
class _CallView(Protocol):
    tool: str
    started: float
    writers: int
    pipeline: Pipeline[Any] | None

    @property
    def outbox(self) -> Outbox: ...


class _WriterView(Protocol):
    tool: str | None
    sent: int


class _AppView(Protocol):
    @property
    def _calls(self) -> Mapping[Any, _CallView]: ...
    @property
    def _responses(self) -> Collection[_WriterView]: ...  # keyed by writer
    @property
    def serving(self) -> bool: ...
    @property
    def endpoint(self) -> Endpoint: ...


#: Upper bounds (seconds) of the call-duration histogram; the last is +Inf.
#: Tool calls stream: minutes are as normal as milliseconds.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    float("inf"),
)

#: Outcomes of a tool call (the ``outcome`` label).
OUTCOMES = ("ok", "error", "cancelled", "crashed")

_RECENT_ERRORS = 20


@attrs.frozen
class CallError:
    """A call that did not end well, as the dashboard lists it.

    Attributes:
        at: when it ended (trio's clock).
        tool: the tool's name.
        outcome: ``"error"`` (an ``isError`` result) or ``"crashed"``.
        kind: the exception type, or ``"ToolError"`` -- never its message.
    """

    at: float
    tool: str
    outcome: str
    kind: str


@attrs.frozen
class ToolStatistics:
    """One tool's totals: ended calls plus the ones running now.

    Attributes:
        tool: the tool's name.
        calls: ended calls by outcome (every outcome of ``OUTCOMES``).
        duration_counts: ended calls per bucket of ``DURATION_BUCKETS``
            (not cumulative).
        duration_sum: total seconds of the ended calls.
        active: calls running now.
        events_sent: SSE events handed to a connection.
        writes: socket writes those events took (coalescing: fewer).
        bytes_sent: bytes written on the tool's responses.
        progress_conflated: progress events replaced by a newer one.
        logs_dropped: log events dropped for slow clients.
        queued: events waiting in the running calls' outboxes now.
        max_queued: the sum of those outboxes' bounds (``inf``: unbounded).
        stages: per pipeline stage, ended plus running calls.
    """

    tool: str
    calls: Mapping[str, int]
    duration_counts: tuple[int, ...]
    duration_sum: float
    active: int
    events_sent: int
    writes: int
    bytes_sent: int
    progress_conflated: int
    logs_dropped: int
    queued: int
    max_queued: float
    stages: tuple[OperatorStatistics, ...]


@attrs.frozen
class AppStatistics:
    """One observation of an app (see the module docstring).

    Attributes:
        at: when it was taken (trio's clock).
        ready: the lifespan has started (the app serves tool calls).
        sessions: live sessions.
        streams: SSE responses open now (calls and listen streams).
        resumes: requests that resumed a stream (``Last-Event-ID``).
        keepalives: keepalive comments written.
        refusals: refused requests by HTTP status.
        tools: per tool, sorted by name.
        errors: the latest failed calls, oldest first.
    """

    at: float
    ready: bool
    sessions: int
    streams: int
    resumes: int
    keepalives: int
    refusals: Mapping[int, int]
    tools: tuple[ToolStatistics, ...]
    errors: tuple[CallError, ...]


def merge_statistics(a: OperatorStatistics, b: OperatorStatistics) -> OperatorStatistics:
    """Two snapshots of one stage (e.g. of two calls of a tool) as one.

    Counts add up; ``buffered_peak`` is the larger; batch histograms merge.
    """
    sizes = collections.Counter(dict(a.batch_sizes))
    sizes.update(dict(b.batch_sizes))
    return OperatorStatistics(
        name=a.name,
        items_in=a.items_in + b.items_in,
        items_out=a.items_out + b.items_out,
        emitted=a.emitted + b.emitted,
        dropped=a.dropped + b.dropped,
        filtered=a.filtered + b.filtered,
        injected=a.injected + b.injected,
        buffered=a.buffered + b.buffered,
        buffered_peak=max(a.buffered_peak, b.buffered_peak),
        send_blocked_seconds=a.send_blocked_seconds + b.send_blocked_seconds,
        batch_sizes=tuple(sorted(sizes.items())),
    )


def _stage_names(stages: Iterable[OperatorStatistics]) -> list[OperatorStatistics]:
    """Stages named uniquely within one pipeline (``map``, ``map#2``, ...)."""
    seen: collections.Counter[str] = collections.Counter()
    named = []
    for stage in stages:
        seen[stage.name] += 1
        n = seen[stage.name]
        named.append(stage if n == 1 else attrs.evolve(stage, name=f"{stage.name}#{n}"))
    return named


def _add_stages(into: dict[str, OperatorStatistics], stages: Iterable[OperatorStatistics]) -> None:
    """Add one pipeline's stage snapshots to per-stage totals."""
    for stage in _stage_names(stages):
        known = into.get(stage.name)
        into[stage.name] = stage if known is None else merge_statistics(known, stage)


class _Totals:
    """One tool's ended calls (mutable, owned by :class:`Telemetry`)."""

    __slots__ = (
        "bytes_sent",
        "calls",
        "duration_counts",
        "duration_sum",
        "events_sent",
        "logs_dropped",
        "progress_conflated",
        "stages",
        "writes",
    )

    def __init__(self) -> None:
        self.calls = dict.fromkeys(OUTCOMES, 0)
        self.duration_counts = [0] * len(DURATION_BUCKETS)
        self.duration_sum = 0.0
        self.events_sent = 0
        self.writes = 0
        self.bytes_sent = 0
        self.progress_conflated = 0
        self.logs_dropped = 0
        self.stages: dict[str, OperatorStatistics] = {}


class Telemetry:
    """Totals kept by one :class:`~flowkit_http.MCPApp` (module docstring).

    The app calls :meth:`call_ended`, :meth:`response_ended` and
    :meth:`refused`, and bumps ``resumes`` and ``keepalives``;
    observers call :meth:`snapshot`.
    """

    def __init__(self) -> None:
        self._tools: dict[str, _Totals] = {}
        self.refusals: collections.Counter[int] = collections.Counter()
        self.resumes = 0
        self.keepalives = 0
        self.errors: collections.deque[CallError] = collections.deque(maxlen=_RECENT_ERRORS)
        # Ended calls whose outbox a response is still writing.
        self._draining: set[_CallView] = set()

    def _totals(self, tool: str) -> _Totals:
        totals = self._tools.get(tool)
        if totals is None:
            totals = self._tools[tool] = _Totals()
        return totals

    def refused(self, status: int) -> None:
        """A request was refused with HTTP ``status`` (4xx/5xx)."""
        self.refusals[status] += 1

    def call_ended(self, call: _CallView, outcome: str, kind: str | None) -> None:
        """Fold a finished call into its tool's totals (once per call).

        Its outbox may still hold events a connected response is writing
        (the final result, at least): those numbers are folded when that
        response ends (:meth:`response_ended`), and observed as live until then.
        """
        tool = call.tool
        totals = self._totals(tool)
        now = trio.current_time()
        duration = now - call.started
        totals.calls[outcome] += 1
        totals.duration_counts[bisect.bisect_left(DURATION_BUCKETS, duration)] += 1
        totals.duration_sum += duration
        if call.pipeline is not None:
            _add_stages(totals.stages, call.pipeline.statistics())
        if kind is not None and outcome in ("error", "crashed"):
            self.errors.append(CallError(now, tool, outcome, kind))
        if call.writers:
            self._draining.add(call)
        else:
            self._fold_outbox(call)

    def response_ended(self, call: _CallView, sent: int) -> None:
        """A response carrying ``call`` ended, having written ``sent`` bytes."""
        self._totals(call.tool).bytes_sent += sent
        if call in self._draining and not call.writers:
            self._draining.discard(call)
            self._fold_outbox(call)

    def _fold_outbox(self, call: _CallView) -> None:
        totals = self._totals(call.tool)
        outbox = call.outbox.statistics()
        totals.events_sent += outbox.delivered
        totals.writes += outbox.writes
        totals.progress_conflated += outbox.conflated_progress
        totals.logs_dropped += outbox.dropped_logs

    def snapshot(self, app: _AppView) -> AppStatistics:
        """Ended totals plus what ``app`` is running now."""
        live: dict[str, list[_CallView]] = collections.defaultdict(list)
        for call in app._calls.values():
            live[call.tool].append(call)
        draining: dict[str, list[_CallView]] = collections.defaultdict(list)
        for call in self._draining:
            draining[call.tool].append(call)
        writing: collections.Counter[str] = collections.Counter()
        for writer in app._responses:
            if writer.tool is not None:
                writing[writer.tool] += writer.sent
        tools = []
        for name in sorted(set(self._tools) | set(live) | set(draining)):
            totals = self._tools.get(name) or _Totals()
            stages = dict(totals.stages)
            events_sent, writes = totals.events_sent, totals.writes
            conflated, dropped = totals.progress_conflated, totals.logs_dropped
            queued, max_queued = 0, 0.0
            for call in (*live.get(name, ()), *draining.get(name, ())):
                outbox = call.outbox.statistics()
                events_sent += outbox.delivered
                writes += outbox.writes
                conflated += outbox.conflated_progress
                dropped += outbox.dropped_logs
                queued += outbox.queued
                max_queued += outbox.max_queued
            for call in live.get(name, ()):  # ended calls' stages are in the totals
                if call.pipeline is not None:
                    _add_stages(stages, call.pipeline.statistics())
            tools.append(
                ToolStatistics(
                    tool=name,
                    calls=dict(totals.calls),
                    duration_counts=tuple(totals.duration_counts),
                    duration_sum=totals.duration_sum,
                    active=len(live.get(name, ())),
                    events_sent=events_sent,
                    writes=writes,
                    bytes_sent=totals.bytes_sent + writing[name],
                    progress_conflated=conflated,
                    logs_dropped=dropped,
                    queued=queued,
                    max_queued=max_queued,
                    stages=tuple(stages.values()),
                )
            )
        return AppStatistics(
            at=trio.current_time(),
            ready=app.serving,
            sessions=len(app.endpoint.sessions),
            streams=len(app._responses),
            resumes=self.resumes,
            keepalives=self.keepalives,
            refusals=dict(self.refusals),
            tools=tuple(tools),
            errors=tuple(self.errors),
        )
