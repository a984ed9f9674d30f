"""Accept pacing: new connections wait, briefly, while requests are being worked on.

In a burst of sessions (hundreds of clients connecting at once) the accept
loop takes every connection in the backlog at once; each one's handshake is
then a task in trio's FIFO run queue, and a ``tools/call`` on a connection
that is already past its handshake waits behind all of them. Two rules let
the calls of sessions already admitted go first, and the handshakes follow
at the rate the server completes them (docs/benchmarks.md, "The burst's
tools/call tail"):

* a connection is accepted only when fewer than ``limit`` requests are in
  their working phase (:meth:`Pacer.room`);
* at most ``limit`` *first* requests of connections that may be handshakes
  are worked on at once, in arrival order (:meth:`Pacer.first`); a request
  on a connection that served one before never waits, and neither does a
  first request whose head names a session or a call
  (``flowkit.mcp._headers.may_open_session``, asked before its app starts).
  Without this, the connections accepted before the working count rose each
  had a handshake under way at once: trio runs them in turns, so all of them
  ended together, late, and their sessions' calls then arrived together and
  ended together, late too. A call is what the line makes room for, so it is
  never put in it: a 2026-07-28 client's every call is the first request of
  a connection, and lining those up 8 at a time doubled the lateness p99 of
  500 timed streams (docs/benchmarks.md, "The first-request line and the
  stateless era").

A request is *working* from its head being parsed until its response head
is written (an SSE response writes its head at once; a JSON answer when it
is ready), and counts for ``age`` seconds at most: a long tool, a slow
Redis or a client trickling a body can not hold the count up for longer
than that, and a new connection or a first request never waits more than
``age`` for a turn that a working request holds. A hostile client would
have to start ``limit`` fresh requests every ``age`` seconds to keep others
at their slowest (``limit`` first requests per ``age``), on connections it
can only get through that same slow accept; requests on connections
already in use are never held back.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable

import trio

__all__ = ["Pacer"]


class Pacer:
    """The working requests, oldest first, and the accept loop's wait for room.

    ``limit`` 0 turns pacing off (:meth:`room` never waits).
    """

    __slots__ = ("_changed", "_firsts", "_turns", "_working", "age", "limit", "waited")

    def __init__(self, limit: int, age: float) -> None:
        if limit < 0 or not age > 0 or math.isinf(age):
            raise ValueError("limit must be >= 0 and age a finite number of seconds > 0")
        self.limit = limit
        self.age = age
        self._working: dict[Hashable, float] = {}  # insertion order = start order
        self._changed: trio.Event | None = None
        self._firsts: dict[Hashable, float] = {}  # the working first requests, oldest first
        self._turns: deque[trio.Event] = deque()  # first requests waiting, in arrival order
        self.waited = 0  # accepts and first requests that waited (statistics)

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
        if self._firsts.pop(key, None) is not None:
            self._pass_turn()
        if self._working.pop(key, None) is not None and self._changed is not None:
            self._changed.set()
            self._changed = None

    async def first(self, key: Hashable) -> None:
        """``key``'s connection parsed its *first* request head: wait for a turn, then begin.

        Waits while ``limit`` first requests work (each counted ``age`` at
        most) or others wait before it; a request on a connection that
        served one before calls :meth:`begin` instead and never waits.
        Always a checkpoint when it waits; returns at once (no checkpoint)
        when it is this request's turn.
        """
        if self.limit and (self._turns or self._working_firsts() >= self.limit):
            self.waited += 1
            turn = trio.Event()
            self._turns.append(turn)
            try:
                while not turn.is_set() and self._firsts:
                    with trio.move_on_at(next(iter(self._firsts.values())) + self.age):
                        await turn.wait()
                    if self._working_firsts() < self.limit:
                        break  # the oldest aged out (those queued with it go too)
            finally:
                if not turn.is_set():
                    self._turns.remove(turn)  # aged out, or cancelled: out of the line
        self.begin(key)
        self._firsts[key] = trio.current_time()

    def _pass_turn(self) -> None:
        """A first request ended: the next one waiting goes, if there is room."""
        if self._turns and self._working_firsts() < self.limit:
            self._turns.popleft().set()

    def _working_firsts(self) -> int:
        _expire(self._firsts, trio.current_time(), self.age)
        return len(self._firsts)

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
        _expire(self._working, now, self.age)


def _expire(entries: dict[Hashable, float], now: float, age: float) -> None:
    """Drop the entries (oldest first: start order) ``age`` old or older at ``now``."""
    while entries:
        key, started = next(iter(entries.items()))
        if now - started < age:
            return
        del entries[key]
