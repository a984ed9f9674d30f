"""Log levels, and the threshold a stream reads at every log it emits.

Kept apart from sessions and streams because both use it: a session owns a
:class:`LogThreshold` that ``logging/setLevel`` moves, and each of its
streams holds the same object, so a level set mid-call applies at once
without the stream holding (and importing) its session.
"""

from __future__ import annotations

__all__ = ["LOG_LEVELS", "LogThreshold"]

LOG_LEVELS: dict[str, int] = {
    name: rank
    for rank, name in enumerate(
        ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
    )
}
"""RFC 5424 severities in increasing order, as ``logging/setLevel`` names them."""


class LogThreshold:
    """The lowest level a client wants to see, shared by everyone who reads it.

    Attributes:
        rank: the level's rank in :data:`LOG_LEVELS`; logs below it are not sent.
    """

    __slots__ = ("rank",)

    def __init__(self, level: str) -> None:
        self.rank = LOG_LEVELS[level]

    def set(self, level: str) -> None:
        """Move the threshold (``logging/setLevel``); ``level`` must be a known name."""
        self.rank = LOG_LEVELS[level]

    def admits(self, level: str) -> bool:
        """Whether a log at ``level`` (a known name) goes out."""
        return LOG_LEVELS[level] >= self.rank
