"""The client's timing settings: timeouts, and how a dropped stream is retried.

Reconnection after a cut (2025-11-25 era only) waits, before attempt ``n``
(0 for the first after a stream delivered something)::

    retry + uniform(0, min(max_delay, initial * 2 ** n))

``retry`` is the server's SSE ``retry`` field (in milliseconds; 0 if it sent
none): the spec asks clients to wait that long, so it is a floor, never
shortened by jitter. On top of it, exponential backoff with *full jitter*
(AWS Architecture Blog, "Exponential Backoff And Jitter"): a uniform draw
over the whole window rather than a fixed delay plus a little noise, which
spreads a crowd of clients cut at the same moment (a restarting instance)
instead of bringing them back in waves. Attempts are bounded: after
``max_attempts`` consecutive reconnections that delivered nothing, the call
fails with :class:`~flowkit_client.ResumeFailed`.
"""

from __future__ import annotations

import random

import attrs

from flowkit._checks import check_count

__all__ = ["RetryPolicy", "Timeouts"]


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive_or_none(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 or None, got {value!r}")


def _count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    check_count(value, attribute.name)


@attrs.frozen
class Timeouts:
    """Deadlines, in seconds; ``None`` is no deadline.

    Attributes:
        connect: to open a connection (:class:`~flowkit_client.ConnectTimeout`).
        read: between two reads of a response (:class:`~flowkit_client.ReadTimeout`).
            Servers send keepalives on idle streams (flowkit every 15 s), so the
            default 60 s only fires on a dead peer.
        write: to send a request body.
    """

    connect: float | None = attrs.field(default=10.0, validator=_positive_or_none)  # type: ignore[arg-type]
    read: float | None = attrs.field(default=60.0, validator=_positive_or_none)  # type: ignore[arg-type]
    write: float | None = attrs.field(default=10.0, validator=_positive_or_none)  # type: ignore[arg-type]


@attrs.frozen
class RetryPolicy:
    """How a dropped 2025-11-25 stream is resumed (see the module docstring).

    Attributes:
        max_attempts: consecutive fruitless reconnections before giving up.
        initial: the first backoff window, in seconds.
        max_delay: the cap of the backoff window, in seconds.
    """

    max_attempts: int = attrs.field(default=8, validator=_count)
    initial: float = attrs.field(default=0.25, validator=_non_negative)
    max_delay: float = attrs.field(default=10.0, validator=_non_negative)

    def delay(self, attempt: int, retry_ms: int | None, rng: random.Random) -> float:
        """Seconds to wait before reconnection ``attempt`` (0-based).

        Args:
            attempt: fruitless attempts so far.
            retry_ms: the server's SSE ``retry`` value, or ``None``.
            rng: the random source (seeded in tests).
        """
        window = min(self.max_delay, self.initial * 2.0**attempt)
        return (retry_ms or 0) / 1000 + rng.uniform(0.0, window)
