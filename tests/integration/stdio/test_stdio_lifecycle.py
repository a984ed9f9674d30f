"""``flowkit serve --stdio`` as a subprocess, driven line by line.

What the 2025-11-25 and 2026-07-28 ``transports/stdio`` pages ask of a
server: newline-delimited JSON-RPC in both eras, nothing but messages on
stdout, cancellation by ``notifications/cancelled``, exit at EOF; and what
the issue adds: malformed and oversized lines refused without stopping,
SIGTERM a graceful exit.
"""

from __future__ import annotations

import signal

import orjson
import trio

from ._support import MODERN, call, stdio_server

_DEADLINE = 60


async def test_handshake_era_lists_and_calls_with_progress_one_line_per_message() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            init = await peer.initialize()
            assert init["result"]["protocolVersion"] == "2025-11-25"
            tools = await peer.request(1, "tools/list")
            assert "ticker" in [tool["name"] for tool in tools["result"]["tools"]]
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": call("ticker", {"count": 5}, token="t"),
                }
            )
            result, before = await peer.response(2)
            assert [m["params"]["progress"] for m in before] == [1, 2, 3, 4, 5]
            assert {m["method"] for m in before} == {"notifications/progress"}
            assert result["result"]["structuredContent"] == {"count": 5}
            # Every line was exactly one JSON message: no SSE framing.
            assert all(line.startswith(b"{") for line in peer.lines)
            await peer.close_stdin()
            assert await peer.process.wait() == 0


async def test_stateless_era_needs_no_headers_and_is_cancelled_by_notification() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            discovered = await peer.request(1, "server/discover", {"_meta": MODERN})
            assert "2026-07-28" in discovered["result"]["supportedVersions"]
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": call("forever", {}, token=7, modern=True),
                }
            )
            first = await peer.receive()
            assert first["params"]["progressToken"] == 7
            # The same id again while it runs: refused, the first call goes on.
            again = await peer.request(2, "tools/call", call("quick", {}, modern=True))
            assert again["error"]["code"] == -32600
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": 2, "_meta": MODERN},
                }
            )
            await peer.stderr_says("forever stopped")
            pong = await peer.request(3, "tools/call", call("quick", {}, modern=True))
            assert pong["result"]["structuredContent"] == {"ok": True}
            assert pong["result"]["resultType"] == "complete"
            # Nothing for the cancelled request after the cancel was handled,
            # and never a response to it.
            await peer.close_stdin()
            assert await peer.process.wait() == 0
            tail = []
            while True:
                try:
                    tail.append(await peer.receive())
                except EOFError:
                    break
            assert not any(m.get("id") == 2 for m in tail)


async def test_handshake_cancel_stops_the_pipeline_and_nothing_follows() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            await peer.initialize()
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 5,
                    "method": "tools/call",
                    "params": call("forever", {}, token="f"),
                }
            )
            await peer.receive()
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": 5, "reason": "enough"},
                }
            )
            await peer.stderr_says("forever stopped")
            # After the ping's answer nothing more of call 5 can be in flight.
            await peer.send({"jsonrpc": "2.0", "id": 6, "method": "ping"})
            _, before = await peer.response(6)
            assert all(m.get("id") != 5 for m in before)
            pong = await peer.request(7, "ping")
            assert pong == {"jsonrpc": "2.0", "id": 7, "result": {}}


async def test_malformed_lines_get_errors_and_the_server_goes_on() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            await peer.send(b"not json\n")
            assert (await peer.receive())["error"]["code"] == -32700
            await peer.send(b"\xff\xfe\n")
            assert (await peer.receive())["error"]["code"] == -32700
            await peer.send(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]\n')
            assert (await peer.receive())["error"]["code"] == -32600
            await peer.send(b'{"jsonrpc":"1.0","id":1,"method":"ping"}\n')
            assert (await peer.receive())["error"]["code"] == -32600
            # A request before initialize: refused, with its id.
            early = await peer.request(9, "tools/list")
            assert early["error"]["code"] == -32600
            assert "initialize" in early["error"]["message"]
            # A notification is never answered, not even when refused; blank lines are skipped.
            await peer.send(b'{"jsonrpc":"2.0","method":"notifications/whatever"}\n\n\r\n')
            await peer.initialize()
            twice = await peer.request(
                10,
                "initialize",
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "1"},
                },
            )
            assert twice["error"]["code"] == -32600
            assert (await peer.request(11, "ping"))["result"] == {}


async def test_oversized_line_is_refused_without_being_held() -> None:
    limit = 4 * 1024 * 1024  # the documented default (EndpointConfig.max_body_size)
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            await peer.initialize()
            before = peer.peak_rss()
            # 64 MiB in one line: sixteen times the limit.
            head = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"'
            chunk = b"x" * (1024 * 1024)
            await peer.send(head)
            for _ in range(64):
                await peer.send(chunk)
            await peer.send(b'"}}\n')
            refused = await peer.receive()
            assert refused["error"]["code"] == -32000
            assert str(limit) in refused["error"]["message"]
            assert (await peer.request(2, "ping"))["result"] == {}
            assert peer.peak_rss() - before < 3 * limit  # never the whole line


async def test_print_in_a_tool_goes_to_stderr_not_the_protocol() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            await peer.initialize()
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": call("noisy", {"count": 3}, token=1),
                }
            )
            result, before = await peer.response(1)
            assert len(before) == 3
            assert not result["result"].get("isError")
            await peer.stderr_says("fd1 3")
            assert b"print 3" in peer.stderr
            assert all(orjson.loads(line) for line in peer.lines)


async def test_eof_ends_running_calls_and_exits_zero() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            await peer.initialize()
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": call("forever", {}, token=1),
                }
            )
            await peer.receive()
            await peer.close_stdin()
            assert await peer.process.wait() == 0
            await peer.stderr_says("forever stopped")


async def test_sigterm_is_a_graceful_exit() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            await peer.initialize()
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": call("forever", {}, token=1),
                }
            )
            await peer.receive()
            peer.process.send_signal(signal.SIGTERM)
            assert await peer.process.wait() == 0
            await peer.stderr_says("forever stopped")
            assert b"Traceback" not in peer.stderr


async def test_client_closing_stdout_ends_the_server_cleanly() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            await peer.initialize()
            assert peer.process.stdout is not None
            await peer.process.stdout.aclose()
            # Output to a closed pipe: the server notices and exits, status 0.
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": call("forever", {}, token=1),
                }
            )
            assert await peer.process.wait() == 0
            await peer.stderr_says("stdout closed by the client")
            assert b"Traceback" not in peer.stderr


async def test_tool_list_changes_are_announced_on_the_channel_in_both_eras() -> None:
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            init = await peer.initialize()
            assert init["result"]["capabilities"]["tools"]["listChanged"] is True
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": "s",
                    "method": "subscriptions/listen",
                    "params": {"_meta": MODERN, "notifications": {"toolsListChanged": True}},
                }
            )
            ack = await peer.receive()
            assert ack["method"] == "notifications/subscriptions/acknowledged"
            grown, before = await peer.response_after(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": call("grow", {"name": "fresh"}),
                }
            )
            assert grown["result"]["structuredContent"] == {"added": "fresh"}
            # Both the session (2025 era) and the subscription (2026) hear of it,
            # the latter with its subscription id.
            changed = [m for m in before if m.get("method") == "notifications/tools/list_changed"]
            if len(changed) < 2:
                changed += [await peer.receive() for _ in range(2 - len(changed))]
            metas = sorted(str(m.get("params", {}).get("_meta")) for m in changed)
            assert metas == ["None", str({"io.modelcontextprotocol/subscriptionId": "s"})]
            listed = await peer.request(2, "tools/list")
            assert "fresh" in [tool["name"] for tool in listed["result"]["tools"]]


async def test_resources_are_read_over_stdio() -> None:
    """Resource reads are user code the adapter runs (Invoke); the answer is one line."""
    with trio.fail_after(_DEADLINE):
        async with stdio_server() as peer:
            await peer.initialize()
            read = await peer.request(1, "resources/read", {"uri": "notes://monday"})
            (content,) = read["result"]["contents"]
            assert content == {
                "uri": "notes://monday",
                "mimeType": "text/plain",
                "text": "note of monday",
            }
            missing = await peer.request(2, "resources/read", {"uri": "other://x"})
            assert missing["error"]["code"] == -32002
            await peer.close_stdin()
            assert await peer.process.wait() == 0
