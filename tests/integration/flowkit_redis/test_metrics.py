"""Issue 17, item 4: consumer-group sources and stream sinks in ``/metrics``.

A real pipeline against a real redis-server; then a real app's ``/metrics``
(hypercorn, scraped over HTTP) shows what the source and the sink counted.
"""

from __future__ import annotations

import gc

import flowkit
from flowkit_redis import Keys, RedisClient, open_group_source, stream_sink

from ..observability._app import observed, scrape, value
from .test_groups import feed, tagged


async def test_a_group_source_and_a_stream_sink_are_scraped(
    client: RedisClient, keys: Keys
) -> None:
    source_stream, out = f"{keys.prefix}:in", f"{keys.prefix}:out"
    await feed(client, source_stream, 500)
    sink = stream_sink(client, out, idempotent=True)
    async with (
        open_group_source(client, source_stream, "g", until_idle=0.3) as source,
        flowkit.open_pipeline(source, flowkit.map(tagged), sink) as pipeline,
    ):
        assert [x async for x in pipeline] == []
    async with observed() as (_base, http, _probe):
        families = await scrape(http)
        labels = {"stream": source_stream, "group": "g", "consumer": source.consumer}
        stats, written = source.statistics(), sink.sink_statistics()
        assert value(families, "flowkit_group_read_total", **labels) == stats.read == 500
        assert value(families, "flowkit_group_acked_total", **labels) == stats.acked == 500
        assert value(families, "flowkit_group_round_trips_total", **labels) == stats.round_trips
        assert value(families, "flowkit_group_consumer_pending_entries", **labels) == 0
        assert value(families, "flowkit_sink_written_total", stream=out) == written.written == 500
        assert value(families, "flowkit_sink_round_trips_total", stream=out) == written.round_trips
        assert families["flowkit_group_read"].type == "counter"
        assert families["flowkit_group_lag_entries"].type == "gauge"

        del source, sink, pipeline  # dropped by the program: they leave the exposition
        gc.collect()
        after = await scrape(http)
        left = [
            sample.labels
            for name in ("flowkit_group_read", "flowkit_sink_written")
            if name in after
            for sample in after[name].samples
        ]
        assert not [x for x in left if source_stream == x.get("stream") or out == x.get("stream")]
