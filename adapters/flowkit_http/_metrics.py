"""``/metrics``: an app's telemetry in the Prometheus text exposition format.

A custom ``prometheus_client`` collector turns one
:meth:`~flowkit_http._telemetry.Telemetry.snapshot` into metric families at
scrape time; nothing is counted per event (see ``_telemetry``). Each app has
its own registry (two apps in one process do not mix), holding this
collector plus prometheus_client's process and platform collectors (which
also read ``/proc`` at scrape time). The garbage-collector collector is left
out: it hooks ``gc.callbacks``, i.e. runs on the hot path.

Every metric is listed, with its meaning, in ``docs/observability.md``.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from flowkit.mcp import InMemoryEventStore

from ._telemetry import DURATION_BUCKETS, AppStatistics

if TYPE_CHECKING:
    from ._asgi import MCPApp

__all__ = [
    "BATCH_BUCKETS",
    "FlowkitCollector",
    "metrics_registry",
    "render_metrics",
]

_NS = "flowkit"

#: Upper bounds of the batch-size histogram: fixed, so ``le`` series stay the
#: same from scrape to scrape (``histogram_quantile`` needs that).
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, float("inf"))


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


def _cumulative(counts: Iterable[int], bounds: Iterable[float]) -> list[tuple[str, float]]:
    total = 0
    buckets = []
    for bound, count in zip(bounds, counts, strict=True):
        total += count
        buckets.append((_bound(bound), float(total)))
    return buckets


class FlowkitCollector(Collector):
    """Reads an :class:`~flowkit_http.MCPApp`'s telemetry at scrape time."""

    def __init__(self, app: MCPApp) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        yield from families(self._app.telemetry.snapshot(self._app))
        store = self._app.endpoint.event_store
        if isinstance(store, InMemoryEventStore):  # the Redis store bounds itself in Redis
            yield from event_store_families(store)
        if "flowkit_redis" in sys.modules:  # else no group source or sink can exist
            yield from redis_pipeline_families()


def event_store_families(store: InMemoryEventStore) -> Iterator[Metric]:
    """What the in-memory event store keeps for resumption, and what its bounds dropped.

    An evicted event is one a late resume can no longer replay: a rising
    ``flowkit_event_store_evicted_total`` says the bounds are too tight for
    the clients' reconnect times.
    """
    evicted = CounterMetricFamily(
        f"{_NS}_event_store_evicted",
        "Events dropped from the resumption store to keep within its bounds.",
    )
    evicted.add_metric([], store.evicted)
    yield evicted
    kept = GaugeMetricFamily(f"{_NS}_event_store_events", "Events kept for resumption now.")
    kept.add_metric([], len(store))
    yield kept
    size = GaugeMetricFamily(f"{_NS}_event_store_bytes", "Bytes of the events kept now.")
    size.add_metric([], store.size)
    yield size


_GROUP_COUNTERS = {
    "read": "Entries a consumer read with XREADGROUP.",
    "claimed": "Entries it took over from other consumers (XAUTOCLAIM).",
    "acked": "Entries it acknowledged (XACK).",
    "dead_lettered": "Entries it moved to the dead-letter stream.",
    "round_trips": "Commands or pipelines it sent to Redis.",
    "retries": "Commands it retried after Redis was unreachable.",
    "consumers_deleted": "Stale consumers it removed from the group.",
}
_SINK_COUNTERS = {
    "written": "Entries stream sinks appended.",
    "duplicates": "Items they skipped: their dedup record existed (idempotent mode).",
    "round_trips": "Writes they sent to Redis.",
    "retries": "Chunks they wrote again after Redis was unreachable.",
}


def redis_pipeline_families() -> Iterator[Metric]:
    """The consumer-group sources and stream sinks alive in the process (issue 17).

    Sources are labelled by stream, group and consumer; sinks are summed per
    stream. A source or sink the program dropped leaves the exposition (its
    series end, or the sum drops: a counter reset, which ``rate()`` handles).
    """
    from flowkit_redis import live_sinks, live_sources

    labels = ["stream", "group", "consumer"]
    counters = {
        key: CounterMetricFamily(f"{_NS}_group_{key}", doc, labels=labels)
        for key, doc in _GROUP_COUNTERS.items()
    }
    pending = GaugeMetricFamily(
        f"{_NS}_group_consumer_pending_entries",
        "Entries a consumer read or claimed and has not acknowledged yet.",
        labels=labels,
    )
    lag = GaugeMetricFamily(
        f"{_NS}_group_lag_entries",
        "Entries the group has not read yet (XINFO GROUPS).",
        labels=["stream", "group"],
    )
    group_pending = GaugeMetricFamily(
        f"{_NS}_group_pending_entries",
        "The whole group's unacknowledged entries (XINFO GROUPS).",
        labels=["stream", "group"],
    )
    groups: dict[tuple[str, str], tuple[int, int]] = {}
    for source in sorted(live_sources(), key=lambda s: (s.stream, s.group, s.consumer)):
        stats = source.statistics()
        values = [source.stream, source.group, stats.consumer]
        for key, family in counters.items():
            family.add_metric(values, getattr(stats, key))
        pending.add_metric(values, stats.pending)
        if stats.lag >= 0:  # one consumer's view per group (refreshed every claim_interval)
            groups[source.stream, source.group] = (stats.lag, stats.group_pending)
    for (stream, group), (behind, unacked) in sorted(groups.items()):
        lag.add_metric([stream, group], behind)
        group_pending.add_metric([stream, group], unacked)
    sinks: dict[str, dict[str, int]] = {}
    for sink in live_sinks():
        total = sinks.setdefault(sink.stream, dict.fromkeys(_SINK_COUNTERS, 0))
        written = sink.sink_statistics()
        for key in _SINK_COUNTERS:
            total[key] += getattr(written, key)
    sink_counters = {
        key: CounterMetricFamily(f"{_NS}_sink_{key}", doc, labels=["stream"])
        for key, doc in _SINK_COUNTERS.items()
    }
    for stream, total in sorted(sinks.items()):
        for key, family in sink_counters.items():
            family.add_metric([stream], total[key])
    if pending.samples:  # no families at all without a source (or sink) alive
        yield from counters.values()
        yield pending
        yield lag
        yield group_pending
    if sinks:
        yield from sink_counters.values()


def families(stats: AppStatistics) -> Iterator[Metric]:
    """The metric families of one observation (every name in the docs)."""
    up = GaugeMetricFamily(f"{_NS}_ready", "1 once the lifespan has started (tool calls run).")
    up.add_metric([], 1.0 if stats.ready else 0.0)
    yield up
    sessions = GaugeMetricFamily(f"{_NS}_active_sessions", "Live MCP sessions.")
    sessions.add_metric([], stats.sessions)
    yield sessions
    streams = GaugeMetricFamily(
        f"{_NS}_active_streams", "SSE responses open now (tool calls and listen streams)."
    )
    streams.add_metric([], stats.streams)
    yield streams
    resumes = CounterMetricFamily(
        f"{_NS}_resumes", "Requests that resumed a stream with Last-Event-ID."
    )
    resumes.add_metric([], stats.resumes)
    yield resumes
    keepalives = CounterMetricFamily(f"{_NS}_keepalives", "Keepalive comments written.")
    keepalives.add_metric([], stats.keepalives)
    yield keepalives
    refusals = CounterMetricFamily(
        f"{_NS}_refusals", "Requests refused, by HTTP status.", labels=["status"]
    )
    for status, count in sorted(stats.refusals.items()):
        refusals.add_metric([str(status)], count)
    yield refusals

    calls = CounterMetricFamily(
        f"{_NS}_tool_calls", "Tool calls ended, by outcome.", labels=["tool", "outcome"]
    )
    active = GaugeMetricFamily(f"{_NS}_active_calls", "Tool calls running now.", labels=["tool"])
    duration = HistogramMetricFamily(
        f"{_NS}_tool_call_duration_seconds",
        "Duration of ended tool calls.",
        labels=["tool"],
    )
    per_tool = {
        "events_sent": "SSE events handed to a connection.",
        "writes": "Socket writes those events took (fewer when events coalesce).",
        "bytes_sent": "Bytes written on tool-call responses.",
        "events_dropped": "Log events dropped for slow clients (conflate policy).",
        "progress_conflated": "Progress events replaced by a newer one (conflate policy).",
    }
    counters = {
        key: CounterMetricFamily(f"{_NS}_{key}", text, labels=["tool"])
        for key, text in per_tool.items()
    }
    queued = GaugeMetricFamily(
        f"{_NS}_outbox_queued_events", "Events waiting for a client now.", labels=["tool"]
    )
    stage_counts = {
        "items_in": "Items a pipeline stage received.",
        "items_out": "Items a pipeline stage delivered downstream.",
        "dropped": "Items a pipeline stage's overflow policy discarded.",
        "filtered": "Items a pipeline stage's predicate rejected.",
        "injected": "Values a pipeline stage created (keepalive heartbeats).",
        "send_blocked_seconds": "Time a pipeline stage waited for downstream room.",
    }
    stage_counters = {
        key: CounterMetricFamily(f"{_NS}_stage_{key}", text, labels=["tool", "stage"])
        for key, text in stage_counts.items()
    }
    buffered = GaugeMetricFamily(
        f"{_NS}_stage_buffered_items",
        "Items held by a pipeline stage now, summed over running calls.",
        labels=["tool", "stage"],
    )
    peak = GaugeMetricFamily(
        f"{_NS}_stage_buffered_peak_items",
        "The most items a pipeline stage ever held in one call.",
        labels=["tool", "stage"],
    )
    batches = HistogramMetricFamily(
        f"{_NS}_stage_batch_size",
        "Sizes of the batches a batching stage emitted.",
        labels=["tool", "stage"],
    )
    for tool in stats.tools:
        name = tool.tool
        for outcome, count in tool.calls.items():
            calls.add_metric([name, outcome], count)
        active.add_metric([name], tool.active)
        duration.add_metric(
            [name], _cumulative(tool.duration_counts, DURATION_BUCKETS), tool.duration_sum
        )
        counters["events_sent"].add_metric([name], tool.events_sent)
        counters["writes"].add_metric([name], tool.writes)
        counters["bytes_sent"].add_metric([name], tool.bytes_sent)
        counters["events_dropped"].add_metric([name], tool.logs_dropped)
        counters["progress_conflated"].add_metric([name], tool.progress_conflated)
        queued.add_metric([name], tool.queued)
        for stage in tool.stages:
            labels = [name, stage.name]
            for key, family in stage_counters.items():
                family.add_metric(labels, getattr(stage, key))
            buffered.add_metric(labels, stage.buffered)
            peak.add_metric(labels, stage.buffered_peak)
            if stage.batch_sizes:
                counts = [0] * len(BATCH_BUCKETS)
                for size, count in stage.batch_sizes:
                    counts[bisect.bisect_left(BATCH_BUCKETS, size)] += count
                total = sum(size * count for size, count in stage.batch_sizes)
                batches.add_metric(labels, _cumulative(counts, BATCH_BUCKETS), float(total))
    yield calls
    yield active
    yield duration
    yield from counters.values()
    yield queued
    yield from stage_counters.values()
    yield buffered
    yield peak
    yield batches


def metrics_registry(app: MCPApp) -> CollectorRegistry:
    """A registry of its own for ``app``: flowkit's collector plus the process's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlowkitCollector(app))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def render_metrics(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """One scrape of ``registry``, and its content type.

    The format follows the scraper's ``Accept`` (prometheus_client's
    negotiation): OpenMetrics when asked for, else the classic text format
    0.0.4, which every Prometheus reads.
    """
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
