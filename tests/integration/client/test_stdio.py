"""The client over stdio: real server subprocesses (``flowkit serve --stdio``, the official SDK's).

Every test launches the server the way a user would, as a child process
speaking newline-delimited JSON-RPC on its stdin and stdout, and checks what
the client's caller sees: tools, progress, partial results, cancellation,
a server that dies, a command that cannot run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.lowlevel

from flowkit_client import (
    ConnectError,
    ConnectTimeout,
    LogMessage,
    Progress,
    ProtocolError,
    RPCError,
    StreamCut,
    TransportError,
    open_stdio_client,
)

ERAS = ["2026-07-28", "2025-11-25"]
DEMO = [sys.executable, "-m", "flowkit_http", "serve", "--stdio", "--demo"]
TARGET = [*DEMO[:-1], "tests.integration.client._stdio_server:server"]
OFFICIAL = [sys.executable, "-m", "tests.integration.client._official_server", "--stdio"]


class Stderr:
    """The server's stderr as a pipe the test reads (what its tools print lands there)."""

    def __init__(self) -> None:
        read, self.fd = os.pipe()
        self._stream = trio.lowlevel.FdStream(read)
        self.text = ""

    def parent_done(self) -> None:
        """Close our copy of the write end: EOF then means the server has exited."""
        os.close(self.fd)

    async def until(self, needle: str) -> str:
        """Read until ``needle`` has been printed; returns all text so far."""
        while needle not in self.text:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                raise AssertionError(f"stderr ended without {needle!r}: {self.text}")
            self.text += chunk.decode()
        return self.text

    async def to_end(self) -> str:
        while chunk := await self._stream.receive_some(65536):
            self.text += chunk.decode()
        return self.text

    async def aclose(self) -> None:
        await self._stream.aclose()


@asynccontextmanager
async def server_stderr() -> AsyncIterator[Stderr]:
    stderr = Stderr()
    try:
        yield stderr
    finally:
        await stderr.aclose()


@pytest.mark.parametrize("era", ERAS)
async def test_lists_and_calls_the_demo_with_progress_in_both_eras(era: str) -> None:
    with trio.fail_after(60):
        async with open_stdio_client(DEMO, era=era) as client:  # type: ignore[arg-type]
            assert client.server.protocol_version == era
            assert client.server.name == "flowkit-demo"
            names = [tool.name for tool in await client.list_tools()]
            async with client.call_tool("ticker", {"count": 5}) as call:
                events = [event async for event in call]
            text = "First part. Some words here.\n\nSecond part. More words."
            async with client.call_tool("analyze_document", {"text": text}) as call:
                partials = [e.data async for e in call if isinstance(e, LogMessage)]
                analysed = await call.result()
    assert names[:2] == ["ticker", "analyze_document"]
    assert events[:5] == [Progress(i, 5, f"tick {i}/5") for i in range(1, 6)]
    assert events[5].structured == {"count": 5}  # type: ignore[union-attr]
    assert len(partials) == 2  # one per section, as they are found
    assert analysed.structured["words"] == 9


async def test_auto_speaks_2026_and_a_command_string_is_split_like_a_shell() -> None:
    command = " ".join(DEMO)  # sys.executable has no spaces here
    with trio.fail_after(60):
        async with open_stdio_client(command) as client:
            assert client.server.protocol_version == "2026-07-28"
            assert (await client.call("ticker", {"count": 2})).structured == {"count": 2}


async def test_concurrent_calls_on_one_pipe_each_get_their_own_progress() -> None:
    results: dict[int, list[float]] = {}
    with trio.fail_after(60):
        async with open_stdio_client(DEMO) as client:

            async def one(count: int) -> None:
                async with client.call_tool("ticker", {"count": count}) as call:
                    results[count] = [e.progress async for e in call if isinstance(e, Progress)]

            async with trio.open_nursery() as nursery:
                for count in (50, 120, 7):
                    nursery.start_soon(one, count)
    assert results == {n: list(range(1, n + 1)) for n in (50, 120, 7)}


@pytest.mark.parametrize("era", ERAS)
async def test_leaving_the_block_early_cancels_the_call_and_the_server_goes_on(era: str) -> None:
    with trio.fail_after(60):
        async with server_stderr() as stderr:
            async with open_stdio_client(TARGET, era=era, stderr=stderr.fd) as client:  # type: ignore[arg-type]
                stderr.parent_done()
                async with client.call_tool("forever", {"interval_ms": 1}) as call:
                    async for event in call:
                        if isinstance(event, Progress) and event.message == "step 3":
                            break
                # notifications/cancelled (both eras on stdio) stopped the pipeline:
                printed = await stderr.until("forever stopped after")
                assert (await client.call("quick")).structured == {"ok": True}
            rest = await stderr.to_end()  # EOF: the server exited at the block's end
    assert printed.count("forever stopped") == 1
    assert rest.count("forever stopped") == 1


async def test_a_caller_that_stops_reading_holds_the_server_back() -> None:
    """Backpressure end to end: nothing piles up in the client while its caller is busy.

    The caller reads ten events, then gives the server a second to finish
    (it cannot: it waits), then reads on. The lossless tool can only finish
    producing once the caller has taken all but what the bounded places in
    between hold: the server's outbox (256) and the batch its pump hands the
    writer (up to as many), the pipe (64 KiB), the client's read (64 KiB),
    its route (64) and the call's read-ahead (64). A client that buffered without bound would let
    it finish in that second, ten events in (one-sided: a slow machine can
    only make this pass, never fail).
    """
    count, size = 4000, 2000  # 8 MB of notifications
    consumed = 0
    consumed_when_produced: int | None = None
    with trio.fail_after(60):
        async with (
            server_stderr() as stderr,
            open_stdio_client(TARGET, stderr=stderr.fd) as client,
        ):
            stderr.parent_done()
            produced = trio.Event()
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    nonlocal consumed_when_produced
                    await stderr.until("flood produced everything")
                    consumed_when_produced = consumed
                    produced.set()

                nursery.start_soon(watch)
                async with client.call_tool("flood", {"count": count, "size": size}) as call:
                    async for event in call:
                        if isinstance(event, Progress):
                            consumed += 1
                            assert event.progress == consumed
                        if consumed == 10:
                            with trio.move_on_after(1.0):
                                await produced.wait()
                    result = await call.result()
    assert consumed == count
    assert result.is_error is False
    assert consumed_when_produced is not None
    in_flight = 2 * 256 + 64 + 64 + 4 * (65536 // size) + 16
    assert consumed_when_produced >= count - in_flight


@pytest.mark.parametrize("era", ERAS)
async def test_a_server_that_dies_mid_call_is_a_typed_error_not_a_hang(era: str) -> None:
    with trio.fail_after(30):
        async with open_stdio_client(TARGET, era=era) as client:  # type: ignore[arg-type]
            with pytest.raises(StreamCut, match="exited with status 3"):
                async with client.call_tool("die", {"status": 3}) as call:
                    async for _ in call:
                        pass
            with pytest.raises(TransportError, match="exited with status 3"):
                await client.list_tools()  # and every later request, at once


async def test_a_command_that_cannot_run_or_exits_at_once_is_a_connect_error() -> None:
    with trio.fail_after(30):
        with pytest.raises(
            ConnectError, match=r"^cannot start no-such-program-here --stdio: No such file"
        ):
            async with open_stdio_client(["no-such-program-here", "--stdio"]):
                pass
        with pytest.raises(ConnectError, match="exited with status 2 before negotiation ended"):
            async with open_stdio_client(
                [sys.executable, "-c", "import sys; sys.exit(2)"], stderr=-3
            ):
                pass
        with pytest.raises(ConnectError, match="empty"):
            async with open_stdio_client("  "):
                pass


async def test_a_server_that_never_answers_is_a_connect_timeout() -> None:
    silent = [sys.executable, "-c", "import time; time.sleep(60)"]
    with trio.fail_after(30), pytest.raises(ConnectTimeout):
        async with open_stdio_client(silent, start_timeout=0.5):
            pass


async def test_a_line_that_is_not_json_rpc_fails_the_connection_loudly() -> None:
    babbler = [sys.executable, "-c", "print('hello, I am not MCP', flush=True); input()"]
    with trio.fail_after(30), pytest.raises(ProtocolError, match=r"not JSON-RPC.*hello, I am not"):
        async with open_stdio_client(babbler, start_timeout=20):
            pass


async def test_a_line_longer_than_the_limit_fails_without_being_held() -> None:
    flood = [
        sys.executable,
        "-c",
        "import sys; sys.stdout.write('x' * 300000); sys.stdout.flush(); input()",
    ]
    with trio.fail_after(30), pytest.raises(ProtocolError, match="longer than 100000 bytes"):
        async with open_stdio_client(flood, max_line=100_000, start_timeout=20):
            pass


async def test_requests_from_the_official_stdio_server_reach_the_callbacks() -> None:
    asked: list[Mapping[str, Any]] = []

    async def on_elicitation(params: Mapping[str, Any]) -> Mapping[str, Any]:
        asked.append(params)
        return {"action": "accept", "content": {"name": "Ada"}}

    async def on_roots(params: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"roots": [{"uri": "file:///tmp/here"}]}

    async def on_sampling(params: Mapping[str, Any]) -> Mapping[str, Any]:
        text = params["messages"][0]["content"]["text"]
        return {"role": "assistant", "content": {"type": "text", "text": text[::-1]}, "model": "m"}

    with trio.fail_after(60):
        async with open_stdio_client(
            OFFICIAL,
            era="2025-11-25",
            on_elicitation=on_elicitation,
            on_roots=on_roots,
            on_sampling=on_sampling,
        ) as client:
            assert client.server.name == "official-test"
            result = await client.call("ask")
            listed = await client.call("roots")
            sampled = await client.call("sample")
            async with client.call_tool("ticker", {"count": 3}) as call:
                progress = [e.progress async for e in call if isinstance(e, Progress)]
    assert result.structured == {"action": "accept", "name": "Ada"}
    assert asked[0]["message"] == "What is your name?"
    assert listed.structured == {"uris": ["file:///tmp/here"]}
    assert sampled.text == "ih yaS"
    assert progress == [1, 2, 3]


@pytest.mark.parametrize("era", ERAS)
async def test_elicitation_over_stdio_in_both_eras_input_required_in_2026(era: str) -> None:
    asked: list[str] = []

    async def on_elicitation(params: Mapping[str, Any]) -> Mapping[str, Any]:
        asked.append(params["message"])
        return {"action": "accept", "content": {"name": "Ada"}}

    with trio.fail_after(60):
        async with open_stdio_client(
            OFFICIAL,
            era=era,  # type: ignore[arg-type]
            on_elicitation=on_elicitation,
            stderr=-3,
        ) as client:
            assert client.server.protocol_version == era
            result = await client.call("greet")
    # 2025-11-25: an elicitation/create request on the pipe; 2026-07-28: the
    # server sends none, the call's result is input_required and is retried.
    assert result.structured == {"greeting": "hello Ada"}
    assert asked == ["What is your name?"]


async def test_a_stdio_server_request_without_a_callback_is_refused_and_it_goes_on() -> None:
    with trio.fail_after(60):
        async with open_stdio_client(OFFICIAL, era="2025-11-25", stderr=-3) as client:
            # Our -32601, which the SDK's tool passes on as the call's error:
            with pytest.raises(RPCError, match="Method not found: roots/list"):
                await client.call("roots")
            assert (await client.call("ticker", {"count": 1})).structured == {"count": 1}
