"""One worker process of the consumer-group tests: source -> map -> idempotent sink.

``python -m tests.integration.flowkit_redis._worker URL IN OUT GROUP`` reads IN through
GROUP, tags each entry with its source id and appends it to OUT once per
source id; it ends once IN has been quiet for a while and prints its
statistics as one JSON line.
"""

from __future__ import annotations

import sys

import attrs
import orjson
import trio

import flowkit
from flowkit_redis import Entry, RedisClient, open_group_source, stream_sink


def tagged(entry: Entry) -> dict[bytes, bytes]:
    return {b"n": entry.fields[b"n"], b"source": entry.id.encode()}


async def work(url: str, source_stream: str, out: str, group: str) -> None:
    async with RedisClient.connect(url) as client:
        sink = stream_sink(
            client, out, idempotent=True, key=lambda fields: fields[b"source"].decode()
        )
        async with (
            open_group_source(
                client, source_stream, group, claim_idle=1.0, claim_interval=0.25, until_idle=3.0
            ) as source,
            flowkit.open_pipeline(source, flowkit.map(tagged), sink) as pipeline,
        ):
            async for _ in pipeline:
                pass
        stats = {**attrs.asdict(source.statistics()), **attrs.asdict(sink.sink_statistics())}
        sys.stdout.buffer.write(orjson.dumps(stats) + b"\n")


if __name__ == "__main__":
    trio.run(work, *sys.argv[1:5])
