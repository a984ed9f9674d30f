"""Issue 6, item 2: exactly-once resumption under injected disconnects.

Three sessions run six ``ticker`` calls each at once (18 streams). Every
connection carrying a stream -- the POST, then each resuming GET -- is cut
at a random byte offset of its body, usually inside an SSE event; the client
keeps only complete events (as an SSE client must) and resumes with
``Last-Event-ID`` = the last complete event's id. After at most eight cuts a
stream is read to its end. Each stream must then have delivered every event
exactly once, in order (event ids ``<stream>:0 .. <stream>:N`` with no gap or
repeat, progress 1..count, exactly one result), and nothing of another stream.
Finally every session replays the others' event ids: it gets 404 or its own
events, never the other session's.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import trio

from flowkit.mcp import ServerSentEvent
from flowkit_http import MCPApp

from ..http._raw import call, initialize, messages, raw_request, sse_events
from ..http._serving import serving
from ._support import make_reliability_server

SESSIONS = 3
CALLS_PER_SESSION = 6
COUNT = 100
MAX_CUTS = 8


class Stream:
    """What the client saw of one tool call across its connections."""

    def __init__(self, session: int, index: int) -> None:
        self.request_id = session * 100 + index
        self.ids: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self.cuts = 0
        self.mid_event_cuts = 0
        self.connections = 0


async def _follow(base: str, headers: dict[str, str], stream: Stream, rng: random.Random) -> None:
    """Run one call to its result, cutting its connections at random byte offsets."""
    while True:
        stream.connections += 1
        if not stream.ids:
            ctx = raw_request(
                base,
                "POST",
                "/mcp",
                headers,
                call(stream.request_id, "ticker", {"count": COUNT, "interval_ms": 3}),
            )
        else:
            resume = {**headers, "accept": "text/event-stream", "last-event-id": stream.ids[-1]}
            ctx = raw_request(base, "GET", "/mcp", resume)
        async with ctx as response:
            if response.status == 409:  # our previous connection's close not seen yet
                await trio.sleep(0.005)
                continue
            assert response.status == 200, response.status
            # The priming event is ~30 bytes: the first cut falls after it.
            low = 1 if stream.ids else 40
            cut = rng.randint(low, 2500) if stream.cuts < MAX_CUTS else None
            received = 0
            ended = False
            while True:
                chunk = await response.body_chunk()
                if chunk is None:
                    ended = True
                    break
                if cut is not None and received + len(chunk) >= cut:
                    chunk = chunk[: cut - received]
                    received = cut
                else:
                    received += len(chunk)
                response.decoder.receive_data(chunk)
                events = list(response.decoder)
                stream.ids += [
                    e.id for e in events if isinstance(e, ServerSentEvent) and e.id is not None
                ]
                stream.messages += messages(events)
                if received == cut:
                    break
            if not ended:
                stream.cuts += 1
                stream.mid_event_cuts += response.decoder.mid_event
        # (leaving the block closes the socket: the disconnect)
        if stream.messages and "result" in stream.messages[-1]:
            return
        if not stream.ids:  # cut inside the priming event: nothing to resume from
            raise AssertionError("the first cut must come after the priming event")


def _check_exactly_once(stream: Stream) -> None:
    prefixes = {event_id.split(":")[0] for event_id in stream.ids}
    assert len(prefixes) == 1, f"events of several streams: {prefixes}"
    seqs = [int(event_id.split(":")[1]) for event_id in stream.ids]
    assert seqs == list(range(COUNT + 2)), seqs  # priming, COUNT progress, the result
    progress = [
        m["params"]["progress"]
        for m in stream.messages
        if m.get("method") == "notifications/progress"
    ]
    assert progress == list(range(1, COUNT + 1))
    results = [m for m in stream.messages if "result" in m or "error" in m]
    assert len(results) == 1
    assert results[0]["id"] == stream.request_id
    assert results[0]["result"]["structuredContent"] == {"count": COUNT}


async def test_disconnects_at_random_bytes_then_resume_deliver_each_event_exactly_once() -> None:
    rng = random.Random(2025_11_25)
    server, _, _ = make_reliability_server()
    app = MCPApp(server)
    streams: dict[int, list[Stream]] = {}
    with trio.fail_after(90):
        async with serving(app) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"
            sessions = [await initialize(client, url) for _ in range(SESSIONS)]
            async with trio.open_nursery() as nursery:
                for s, headers in enumerate(sessions):
                    streams[s] = [Stream(s, i) for i in range(CALLS_PER_SESSION)]
                    for stream in streams[s]:
                        nursery.start_soon(
                            _follow, base, headers, stream, random.Random(rng.random())
                        )
            for session_streams in streams.values():
                for stream in session_streams:
                    _check_exactly_once(stream)

            # Replay never crosses sessions: each session asks for the others' ids.
            crossings = 0
            for s, headers in enumerate(sessions):
                own = {stream.request_id for stream in streams[s]}
                for other, other_streams in streams.items():
                    if other == s:
                        continue
                    for stream in other_streams:
                        for event_id in (stream.ids[0], stream.ids[len(stream.ids) // 2]):
                            crossings += 1
                            reply = await client.get(
                                url,
                                headers={
                                    **headers,
                                    "accept": "text/event-stream",
                                    "last-event-id": event_id,
                                },
                            )
                            assert reply.status_code in (200, 404)
                            for message in messages(sse_events(reply.content)):
                                if "id" in message:
                                    assert message["id"] in own, (s, other, message)
            # A fresh session's guesses get nothing at all.
            fresh = await initialize(client, url)
            for guess in ("1:0", "1:5", "2:1", "99:1", "0:0", "garbage", "1:-1"):
                reply = await client.get(
                    url, headers={**fresh, "accept": "text/event-stream", "last-event-id": guess}
                )
                assert reply.status_code == 404
                assert b"event-stream" not in reply.headers.get("content-type", "").encode()
    all_streams = [s for group in streams.values() for s in group]
    cuts = sum(s.cuts for s in all_streams)
    mid = sum(s.mid_event_cuts for s in all_streams)
    print(
        f"\nresumption: {len(all_streams)} streams x {COUNT + 2} events, "
        f"{cuts} disconnects injected ({mid} inside an event), "
        f"{sum(s.connections for s in all_streams)} connections, "
        f"{crossings} cross-session replays refused or own-only"
    )
    assert cuts >= len(all_streams) * 3
    assert mid >= cuts // 2
