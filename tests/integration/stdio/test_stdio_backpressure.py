"""One pipe for every call: backpressure per tool policy, fairness, bounded memory.

The client stops reading stdout while a lossless and a conflate tool run as
fast as they can. The conflate tool must finish regardless (it never waits
for the client) while the lossless one waits at its bound, and the server's
memory must not grow with what was produced. When the client reads again,
the calls that finished (and a short one started meanwhile) are answered
ahead of the lossless backlog, and the lossless stream is complete and in
order.
"""

from __future__ import annotations

import trio

from ._support import call, stdio_server

COUNT = 50_000
SIZE = 1000  # bytes of message per notification: 50 MB per tool if nothing were bounded


async def test_stalled_reader_bounded_memory_fair_and_lossless() -> None:
    with trio.fail_after(120):
        async with stdio_server() as peer:
            await peer.initialize()
            baseline = peer.peak_rss()
            send = peer.send
            await send(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": call("flood", {"count": COUNT, "size": SIZE}, token="lossless"),
                }
            )
            await send(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": call("chatty", {"count": COUNT, "size": SIZE}, token="conflate"),
                }
            )
            # Nobody reads stdout, yet the conflate tool runs to its end.
            await peer.stderr_says("chatty produced everything")
            await send(
                {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call("quick", {})}
            )
            await send(
                {
                    "jsonrpc": "2.0",
                    "id": 4,
                    "method": "tools/call",
                    "params": call("ticker", {"count": 50}, token="short"),
                }
            )
            await send({"jsonrpc": "2.0", "id": 5, "method": "ping"})
            assert b"flood produced everything" not in peer.stderr  # lossless: it waits
            grown = peer.peak_rss() - baseline
            assert grown < 20 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"

            order: list[object] = []
            progress: dict[str, list[float]] = {"lossless": [], "conflate": [], "short": []}
            answers: dict[int, dict[str, object]] = {}
            while len(answers) < 5:
                message = await peer.receive()
                if message.get("method") == "notifications/progress":
                    params = message["params"]
                    progress[params["progressToken"]].append(params["progress"])
                    order.append(params["progressToken"])
                elif "id" in message:
                    answers[message["id"]] = message
                    order.append(message["id"])

    # Lossless: every notification, in order.
    assert progress["lossless"] == list(range(1, COUNT + 1))
    # Conflate: progress conflated, logs dropped and counted, the result intact.
    chatty = answers[2]["result"]
    assert chatty["structuredContent"] == {"count": COUNT}  # type: ignore[index]
    assert len(progress["conflate"]) < COUNT
    assert chatty["_meta"]["dev.flowkit/droppedLogs"] > 0  # type: ignore[index]
    # Fair: what finished or started while the lossless tool waited did not
    # queue behind its backlog.
    lossless_before = {
        answer: order[: order.index(answer)].count("lossless") for answer in (2, 3, 4, 5)
    }
    assert all(count < 5_000 for count in lossless_before.values()), lossless_before
    assert progress["short"] == list(range(1, 51))
    assert order.index(1) == len(order) - 1  # the lossless call ends last
