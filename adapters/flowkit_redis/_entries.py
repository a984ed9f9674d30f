"""What a consumer-group source hands out and reports: entries, statistics, names."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Entry", "GroupStatistics", "consumer_name"]


@attrs.frozen
class Entry:
    """One stream entry as the pipeline sees it.

    Attributes:
        id: the entry id (``1700000000000-0``): the token acknowledged, and
            the natural dedup key of an idempotent sink.
        fields: the entry's field-value pairs, as bytes.
        claimed: the entry was taken over from another consumer.
    """

    id: str
    fields: Mapping[bytes, bytes]
    claimed: bool = False


@attrs.frozen
class GroupStatistics:
    """A snapshot of one consumer's work (``source.statistics()``).

    Attributes:
        consumer: this consumer's name in the group.
        read: entries read with ``XREADGROUP``.
        claimed: entries taken over from other consumers.
        acked: entries acknowledged by this consumer.
        pending: entries read or claimed and not acknowledged yet.
        dead_lettered: entries moved to the dead-letter stream.
        lag: entries in the stream the group has not read yet (``XINFO
            GROUPS``, refreshed every ``claim_interval``; -1 before).
        group_pending: the whole group's pending entries, same refresh.
        round_trips: commands or pipelines sent to Redis.
        retries: commands retried after Redis was unreachable.
        consumers_deleted: stale consumers removed from the group.
    """

    consumer: str
    read: int = 0
    claimed: int = 0
    acked: int = 0
    pending: int = 0
    dead_lettered: int = 0
    lag: int = -1
    group_pending: int = -1
    round_trips: int = 0
    retries: int = 0
    consumers_deleted: int = 0


def consumer_name() -> str:
    """A name no other process uses: host, pid and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
