"""Accept pacing: new connections wait, briefly, while requests are being worked on.

In a burst of sessions (hundreds of clients connecting at once) the accept
loop takes every connection in the backlog at once; each one's handshake is
then a task in trio's FIFO run queue, and a ``tools/call`` on a connection
that is already past its handshake waits behind all of them. Accepting a
connection only when fewer than ``limit`` requests are in their working
phase lets the calls of sessions already admitted go first, and the
handshakes follow at the rate the server completes them (docs/benchmarks.md,
"The burst's tools/call tail").

A request is *working* from its head being parsed until its response head
is written (an SSE response writes its head at once; a JSON answer when it
is ready), and counts for ``age`` seconds at most: a long tool, a slow
Redis or a client trickling a body can not hold the count up for longer
than that, and a new connection never waits more than ``age`` for room. A
hostile client would have to start ``limit`` fresh requests every ``age``
seconds to keep accepting at its slowest (one connection per ``age``), on
connections it can only get through that same slow accept.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import trio

__all__ = ["Pacer"]


class Pacer:
    """The working requests, oldest first, and the accept loop's wait for room.

    ``limit`` 0 turns pacing off (:meth:`room` never waits).
    """

    __slots__ = ("_changed", "_working", "age", "limit", "waited")

    def __init__(self, limit: int, age: float) -> None:
        if limit < 0 or not age > 0 or math.isinf(age):
            raise ValueError("limit must be >= 0 and age a finite number of seconds > 0")
        self.limit = limit
        self.age = age
        self._working: dict[Hashable, float] = {}  # insertion order = start order
        self._changed: trio.Event | None = None
        self.waited = 0  # accepts that waited for room (statistics)

    def __len__(self) -> int:
        """Requests working now and younger than ``age``."""
        self._expire(trio.current_time())
        return len(self._working)

    def begin(self, key: Hashable) -> None:
        """``key``'s request started working (its head was parsed).

        Entries past their age go here too, so a connection that died
        mid-request is not kept alive by the pacer until the next accept.
        """
        now = trio.current_time()
        self._expire(now)
        self._working.pop(key, None)
        self._working[key] = now

    def end(self, key: Hashable) -> None:
        """``key``'s request wrote its response head, or ended."""
        if self._working.pop(key, None) is not None and self._changed is not None:
            self._changed.set()
            self._changed = None

    async def room(self) -> None:
        """Wait until fewer than ``limit`` requests work, at most ``age`` seconds.

        Always a checkpoint when it waits; returns at once (no checkpoint)
        when there is room.
        """
        if not self.limit or len(self) < self.limit:
            return
        self.waited += 1
        deadline = trio.current_time() + self.age
        while len(self) >= self.limit:
            now = trio.current_time()
            if now >= deadline:
                return
            oldest = next(iter(self._working.values()))
            changed = self._changed
            if changed is None:
                changed = self._changed = trio.Event()
            with trio.move_on_at(min(deadline, oldest + self.age)):
                await changed.wait()

    def _expire(self, now: float) -> None:
        working = self._working
        while working:
            key, started = next(iter(working.items()))
            if now - started < self.age:
                return
            del working[key]
