"""Script calls sent in one pipeline: one round trip for a whole batch of changes.

The core's changes after a request (a call started, its stream attached, the
session touched) and before a write (a run of events, a stream's end) would
each be a round trip of their own. :class:`Batch` collects them as script
calls and sends them in order on one non-transactional pipeline. The calls
go as bare ``EVALSHA``: a pipeline holding coredis ``Script`` objects first
asks Redis whether they exist, which is a round trip more (on a Cluster they
do go as ``Script`` objects: each master must hold the scripts, which coredis
checks and loads per node). After a Redis
restart the scripts are gone (``NOSCRIPT``): they are loaded and the batch is
sent again, which is safe because every call in it is idempotent (explicit
event ids, set and hash writes, expiry refreshes, an end mark written once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import coredis

from ._client import RedisClient

__all__ = ["Batch"]

Call = tuple[Any, Sequence[str], Sequence[Any]]
"""``(script, keys, args)``: one ``EVALSHA`` of a registered coredis script."""


class Batch:
    """Script calls to send together, in order (:meth:`send`)."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self.calls: list[Call] = []

    def add(self, calls: Sequence[Call]) -> None:
        self.calls.extend(calls)

    async def send(self) -> None:
        """One round trip for every call added (two after a Redis restart); then empty.

        Raises:
            StoreUnavailable: Redis cannot be reached (the calls are kept by
                the caller's changes, not here).
        """
        calls, self.calls = self.calls, []
        if not calls:
            return

        cluster = self._client.cluster

        async def pipelined(redis: Any) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    if cluster:  # each master needs the scripts: coredis sees to it
                        script(keys=keys, args=args, client=pipe)
                    else:
                        pipe.evalsha(script.sha, keys=keys, args=args)

        try:
            await self._client.run(pipelined)
        except coredis.exceptions.NoScriptError:
            sources = {script.sha: script.script for script, _, _ in calls}

            async def load(redis: Any) -> None:
                async with redis.pipeline(transaction=False) as pipe:
                    for source in sources.values():
                        pipe.script_load(source)

            await self._client.run(load)
            await self._client.run(pipelined)
