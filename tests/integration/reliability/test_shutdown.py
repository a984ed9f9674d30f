"""Issue 6, item 8: SIGTERM with many open streams.

``flowkit serve --demo`` runs as a subprocess (its ``main``, with log records
formatted to show their level) with a 3 s graceful timeout. Forty tool-call
streams (the demo ``ticker``, endless at this pace) and five GET streams are
open and delivering when it gets SIGTERM. Every stream must end *cleanly*
(the chunked body's terminating chunk, not a reset) within the grace period
measured from the signal, the process must exit 0, and nothing may be logged
at ERROR or above (nor any traceback printed).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from ..http._raw import call, initialize, raw_request

GRACE = 3.0
CALLS = 40
LISTENERS = 5

_MAIN = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')\n"
    "from flowkit_http._cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sigterm_ends_every_open_stream_cleanly_within_the_grace_period(
    tmp_path: Path,
) -> None:
    port = _free_port()
    command = [sys.executable, "-c", _MAIN, "serve", "--demo", "--port", str(port)]
    command += ["--graceful-timeout", str(GRACE)]
    process = await trio.lowlevel.open_process(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = b""
    ended_after: list[float] = []
    try:
        with trio.fail_after(60):
            assert process.stdout is not None
            while b"serving MCP at" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, output.decode()
                output += chunk
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient() as client:
                sessions = [await initialize(client, base + "/mcp") for _ in range(LISTENERS)]
            opened = trio.Semaphore(0)
            signalled = trio.Event()
            sent_at = [0.0]

            async def hold(method: str, headers: dict[str, str], body: bytes) -> None:
                async with raw_request(base, method, "/mcp", headers, body) as response:
                    assert response.status == 200
                    await response.read(stop=2 if method == "POST" else 1)
                    opened.release()
                    _, ended = await response.read()  # ConnectionError if reset
                    assert ended
                    assert signalled.is_set()  # it ran until the signal
                    ended_after.append(trio.current_time() - sent_at[0])

            async def drain_output() -> None:
                nonlocal output
                assert process.stdout is not None
                while chunk := await process.stdout.receive_some():
                    output += chunk

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain_output)
                for i in range(CALLS):
                    body = call(i, "ticker", {"count": 1_000_000, "interval_ms": 20})
                    nursery.start_soon(hold, "POST", sessions[i % LISTENERS], body)
                for headers in sessions:
                    nursery.start_soon(hold, "GET", {**headers, "accept": "text/event-stream"}, b"")
                for _ in range(CALLS + LISTENERS):
                    await opened.acquire()
                sent_at[0] = trio.current_time()
                signalled.set()
                process.send_signal(signal.SIGTERM)
                code = await process.wait()
                exited_after = trio.current_time() - sent_at[0]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert code == 0, text
    assert len(ended_after) == CALLS + LISTENERS
    assert max(ended_after) < GRACE, ended_after
    assert exited_after < GRACE + 2, exited_after
    assert "SIGTERM: shutting down" in text
    for marker in ("ERROR", "CRITICAL", "Traceback"):
        assert marker not in text, text
    print(
        f"\nshutdown: {CALLS} call streams + {LISTENERS} GET streams ended cleanly "
        f"{min(ended_after) * 1000:.0f}-{max(ended_after) * 1000:.0f} ms after SIGTERM; "
        f"process exited 0 after {exited_after * 1000:.0f} ms (grace {GRACE:.0f} s)"
    )
