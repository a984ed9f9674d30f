"""Operator statistics: a mutable counter set and its frozen snapshot.

Every built-in operator keeps a :class:`_Counters` and hands out immutable
:class:`OperatorStatistics` snapshots, so a caller can compare two
observations without racing the running stage.
"""

from __future__ import annotations

from collections import Counter

import attrs

__all__ = ["OperatorStatistics"]


@attrs.frozen
class OperatorStatistics:
    """A snapshot of one stage's counters.

    Conservation holds at every observation::

        items_in == items_out + dropped + filtered + buffered

    Attributes:
        name: the stage's name (operator kind, or the user's label).
        items_in: items received from upstream.
        items_out: upstream items delivered downstream. An item inside an
            emitted batch or folded into a merged value counts once.
        emitted: values sent downstream (a batch or a heartbeat counts once).
        dropped: items discarded by an overflow policy.
        filtered: items a predicate rejected.
        injected: values created by the stage itself (keepalive heartbeats).
        buffered: items held by the stage right now (pending batch, buffer,
            in-flight concurrent calls).
        buffered_peak: the highest ``buffered`` ever observed.
        send_blocked_seconds: total time spent waiting for downstream room.
        batch_sizes: histogram of emitted batch sizes as sorted
            ``(size, count)`` pairs; empty for non-batching stages.
    """

    name: str
    items_in: int = 0
    items_out: int = 0
    emitted: int = 0
    dropped: int = 0
    filtered: int = 0
    injected: int = 0
    buffered: int = 0
    buffered_peak: int = 0
    send_blocked_seconds: float = 0.0
    batch_sizes: tuple[tuple[int, int], ...] = ()


class _Counters:
    """Mutable counters owned by exactly one running stage."""

    __slots__ = (
        "batch_sizes",
        "buffered",
        "buffered_peak",
        "dropped",
        "emitted",
        "filtered",
        "injected",
        "items_in",
        "items_out",
        "name",
        "send_blocked_seconds",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.items_in = 0
        self.items_out = 0
        self.emitted = 0
        self.dropped = 0
        self.filtered = 0
        self.injected = 0
        self.buffered = 0
        self.buffered_peak = 0
        self.send_blocked_seconds = 0.0
        self.batch_sizes: Counter[int] = Counter()

    def passed(self, taken: int, sent: int) -> None:
        """A fusible stage turned ``taken`` items into ``sent`` (the rest were filtered)."""
        self.items_in += taken
        self.items_out += sent
        self.emitted += sent
        self.filtered += taken - sent

    def set_buffered(self, n: int) -> None:
        self.buffered = n
        if n > self.buffered_peak:
            self.buffered_peak = n

    def snapshot(self) -> OperatorStatistics:
        return OperatorStatistics(
            name=self.name,
            items_in=self.items_in,
            items_out=self.items_out,
            emitted=self.emitted,
            dropped=self.dropped,
            filtered=self.filtered,
            injected=self.injected,
            buffered=self.buffered,
            buffered_peak=self.buffered_peak,
            send_blocked_seconds=self.send_blocked_seconds,
            batch_sizes=tuple(sorted(self.batch_sizes.items())),
        )
