"""Many sessions at once: opening them, running calls, sampling server memory."""

from __future__ import annotations

import trio

from . import _servers
from ._client import PROTOCOL_VERSION, ClientError, Session, open_session


async def open_sessions(
    port: int, n: int, concurrency: int = 64, era: str = PROTOCOL_VERSION
) -> list[Session | None]:
    """Open and initialize ``n`` sessions, ``concurrency`` handshakes at a time.

    ``era`` 2026-07-28: connections only (that era has no handshake).

    (Unthrottled connects overflow the server's listen backlog; that is
    what ``burst`` measures, not this.) A session that fails is ``None``.
    """
    out: list[Session | None] = [None] * n
    limit = trio.CapacityLimiter(concurrency)

    async def one(i: int) -> None:
        async with limit:
            try:
                out[i] = await open_session(_servers.HOST, port, _servers.PATH, era=era)
            except (OSError, ClientError):
                out[i] = None

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(one, i)
    return out


def close_all(sessions: list[Session | None]) -> None:
    for s in sessions:
        if s is not None:
            s.close()


async def sample_rss(
    server: _servers.Server, every: float, into: list[tuple[float, int]], t0: float
) -> None:
    """Append (seconds since t0, RSS KiB) every ``every`` seconds until cancelled."""
    while True:
        into.append((trio.current_time() - t0, server.rss_kib()))
        await trio.sleep(every)
