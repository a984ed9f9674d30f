"""The demo's live resource over stdio (``flowkit serve --stdio --demo``), both eras.

The stdio server runs the streaming-native resources as the HTTP app does:
a read returns the pipeline's newest item; ``resources/subscribe`` (2025-11-25)
and ``subscriptions/listen`` with ``resourceSubscriptions`` (2026-07-28) bring
``notifications/resources/updated`` on the channel, the latter carrying its
subscription id.
"""

from __future__ import annotations

import orjson
import trio

from flowkit_http._demo import ROOM

from ._support import MODERN, stdio_server


async def test_the_live_resource_is_read_and_updates_arrive_on_the_channel() -> None:
    with trio.fail_after(60):
        async with stdio_server("--demo") as peer:
            await peer.initialize()
            read = await peer.request(1, "resources/read", {"uri": ROOM})
            (content,) = read["result"]["contents"]
            assert content["mimeType"] == "application/json"
            assert set(orjson.loads(content["text"])) == {"celsius", "readings", "window_s"}
            assert (await peer.request(2, "resources/subscribe", {"uri": ROOM}))["result"] == {}
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": "s",
                    "method": "subscriptions/listen",
                    "params": {"_meta": MODERN, "notifications": {"resourceSubscriptions": [ROOM]}},
                }
            )
            metas: set[str] = set()
            while len(metas) < 2:  # one for the session, one for the subscription
                message = await peer.receive()
                if message.get("method") == "notifications/resources/updated":
                    assert message["params"]["uri"] == ROOM
                    metas.add(str(message["params"].get("_meta")))
            assert metas == {"None", str({"io.modelcontextprotocol/subscriptionId": "s"})}
