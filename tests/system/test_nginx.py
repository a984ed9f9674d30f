"""Issue 6, item 7: behind a real nginx (Debian's package, installed by ``.ci/debian.sh``).

nginx runs on 127.0.0.1 with a generated config (``tests/_system.running_nginx``):
proxy buffering at its defaults (on), ``proxy_read_timeout 2s``, HTTP/1.1 to
the upstream; pid and logs in the test's tmp dir; stopped by its PID. Two flowkit servers sit
behind it: one with a keepalive interval (0.5 s) below the proxy timeout, one
with the default 15 s as the control.

* Events arrive incrementally through the proxy: the ``gated`` tool emits one
  progress step and then waits until the *client* has seen it -- if nginx
  buffered the response, the test would time out instead.
* A tool silent for 4 s (twice ``proxy_read_timeout``) completes through the
  proxy thanks to the keepalive comments; the same call to the control server
  is cut by nginx (no result), which shows the test can fail.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import trio

from flowkit.mcp import SSEComment
from flowkit_http import MCPApp

from .._system import free_port
from .._system import running_nginx as run_nginx
from ..integration.http._raw import call, initialize, messages, raw_request
from ..integration.http._serving import serving
from ..integration.reliability._support import make_reliability_server

PROXY_READ_TIMEOUT = 2
KEEPALIVE = 0.5

_LOCATIONS = """
    server {{
        listen 127.0.0.1:{port};
        location /keepalive/ {{
            proxy_pass http://127.0.0.1:{keepalive_port}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout {timeout}s;
        }}
        location /control/ {{
            proxy_pass http://127.0.0.1:{control_port}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout {timeout}s;
        }}
    }}
"""


def running_nginx(
    binary: str, tmp: Path, keepalive_port: int, control_port: int
) -> AbstractAsyncContextManager[str]:
    port = free_port()
    http = _LOCATIONS.format(
        port=port,
        keepalive_port=keepalive_port,
        control_port=control_port,
        timeout=PROXY_READ_TIMEOUT,
    )
    return run_nginx(binary, tmp, http, port)


async def test_streams_through_nginx_are_incremental_and_survive_its_read_timeout(
    nginx_binary: str, tmp_path: Path
) -> None:
    fast, _, gates = make_reliability_server(keepalive=KEEPALIVE)
    slow, _, _ = make_reliability_server()  # default keepalive: 15 s
    with trio.fail_after(40):
        async with (
            serving(MCPApp(fast)) as keepalive_base,
            serving(MCPApp(slow)) as control_base,
            running_nginx(
                nginx_binary,
                tmp_path,
                int(keepalive_base.rsplit(":", 1)[1]),
                int(control_base.rsplit(":", 1)[1]),
            ) as proxy,
            httpx.AsyncClient() as client,
        ):
            headers = await initialize(client, proxy + "/keepalive/mcp")
            # 1. Incremental: the tool waits until we have seen its first event.
            async with raw_request(
                proxy, "POST", "/keepalive/mcp", headers, call(1, "gated", {})
            ) as response:
                assert response.status == 200
                assert response.headers["content-type"] == "text/event-stream"
                with trio.fail_after(5):
                    events, _ = await response.read(stop=2)  # priming + first progress
                assert messages(events)[-1]["params"]["message"] == "before the gate"
                gates.gate.set()
                rest, ended = await response.read()
            assert ended
            assert "result" in messages(rest)[-1]

            # 2. Idle for twice proxy_read_timeout: kept alive vs. cut.
            control = await initialize(client, proxy + "/control/mcp")
            outcomes: dict[str, tuple[bool, list[str]]] = {}

            async def quiet(name: str, path: str, session: dict[str, str]) -> None:
                body = call(2, "quiet", {"seconds": 2 * PROXY_READ_TIMEOUT})
                async with raw_request(proxy, "POST", path, session, body) as response:
                    assert response.status == 200
                    kinds: list[str] = []
                    try:
                        while (chunk := await response.body_chunk()) is not None:
                            response.decoder.receive_data(chunk)
                            for event in response.decoder:
                                sent = messages([event])
                                kinds.append(
                                    "comment"
                                    if isinstance(event, SSEComment)
                                    else "result"
                                    if sent and "result" in sent[0]
                                    else "data"
                                )
                    except ConnectionError:
                        pass
                    outcomes[name] = (kinds[-1:] == ["result"], kinds)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(quiet, "keepalive", "/keepalive/mcp", headers)
                nursery.start_soon(quiet, "control", "/control/mcp", control)
    completed, kinds = outcomes["keepalive"]
    assert completed, kinds
    assert kinds.count("comment") >= 3  # keepalives crossed the proxy
    completed, kinds = outcomes["control"]
    assert not completed, f"nginx did not cut an idle stream: {kinds}"
    print(
        f"\nnginx: first event through the proxy before the tool went on; a "
        f"{2 * PROXY_READ_TIMEOUT} s silence survived proxy_read_timeout {PROXY_READ_TIMEOUT} s "
        f"with {outcomes['keepalive'][1].count('comment')} keepalives; the control was cut"
    )
