"""Issue 6, item 10: with the ``authenticate`` hook configured (``EndpointConfig.authenticate``,
wired by the adapter through ``MCPServer(config=...)``):

* no request without valid credentials reaches a tool: every method and era,
  with the credential absent, wrong, or in the wrong scheme, gets 401 with
  ``WWW-Authenticate`` -- even one naming a live session;
* sessions are bound to their principal: Bob using Alice's session id (POST,
  GET, resume, DELETE) gets 404, and Alice's session is unharmed;
* the credential never appears in any log record (every logger captured at
  DEBUG, through 401s, 404s, a tool failure and a 503) or in any response.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
import pytest
import trio

from flowkit.mcp import EndpointConfig
from flowkit_http import MCPApp

from ..http._raw import JSON_HEADERS, call, request, sse_events
from ..http._serving import serving
from ._support import make_reliability_server

TOKENS = {"s3cret-alice-token-0001": "alice", "s3cret-bob-token-0002": "bob"}


def authenticate(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization" and value.startswith(b"Bearer "):
            return TOKENS.get(value[7:].decode("latin-1"))
    return None


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_auth_hook_guards_tools_binds_sessions_and_keeps_credentials_out_of_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice_token, bob_token = list(TOKENS)
    config = EndpointConfig(
        authenticate=authenticate, www_authenticate='Bearer realm="flowkit"', max_sessions=2
    )
    server, probe, _ = make_reliability_server(config)
    app = MCPApp(server)
    bodies: list[bytes] = []
    with trio.fail_after(30):
        async with serving(app) as base, httpx.AsyncClient() as client:
            url = base + "/mcp"

            async def post(body: bytes, headers: dict[str, str]) -> httpx.Response:
                reply = await client.post(url, content=body, headers=headers)
                bodies.append(reply.content)
                return reply

            init = request(
                "initialize",
                protocolVersion="2025-11-25",
                capabilities={},
                clientInfo={"name": "t", "version": "0"},
            )
            reply = await post(init, {**JSON_HEADERS, **_auth(alice_token)})
            assert reply.status_code == 200
            alice = {
                **JSON_HEADERS,
                **_auth(alice_token),
                "mcp-session-id": reply.headers["mcp-session-id"],
                "mcp-protocol-version": "2025-11-25",
            }
            await post(request("notifications/initialized", id=None), alice)

            # 1. Nothing without valid credentials reaches a tool.
            forged = [
                {k: v for k, v in alice.items() if k != "authorization"},
                {**alice, "authorization": "Bearer s3cret-alice-token-0000"},
                {**alice, "authorization": f"Basic {alice_token}"},
                {**alice, "authorization": "Bearer"},
            ]
            stateless = {
                **JSON_HEADERS,
                "mcp-protocol-version": "2026-07-28",
                "mcp-method": "tools/call",
                "mcp-name": "forever",
            }
            meta = {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            attempts = 0
            for headers in forged:
                for body in (
                    call(1, "forever", {}),
                    init,
                    request("tools/list", id=2),
                    request("notifications/cancelled", id=None, requestId=1),
                ):
                    reply = await post(body, headers)
                    attempts += 1
                    assert reply.status_code == 401, reply.text
                    assert reply.headers["www-authenticate"] == 'Bearer realm="flowkit"'
                    assert reply.json()["error"]["code"] == -32000
                get = await client.get(url, headers={**headers, "accept": "text/event-stream"})
                delete = await client.delete(url, headers=headers)
                tool = request("tools/call", id=3, name="forever", arguments={}, _meta=meta)
                modern = await post(
                    tool,
                    {**stateless, **{k: v for k, v in headers.items() if k == "authorization"}},
                )
                attempts += 3
                assert (get.status_code, delete.status_code, modern.status_code) == (401, 401, 401)
            assert not probe.started.is_set()  # no tool ran
            assert len(app.endpoint.sessions) == 1

            # 2. Sessions are bound to their principal.
            bob_on_alice = {**alice, **_auth(bob_token)}
            async with client.stream(
                "POST", url, content=call(5, "ticker", {"count": 3}), headers=alice
            ) as r:
                events = sse_events(await r.aread())
            last_id = events[-1].id
            assert last_id is not None
            assert (await post(request("ping", id=6), bob_on_alice)).status_code == 404
            assert (await post(call(7, "ticker", {"count": 1}), bob_on_alice)).status_code == 404
            resume = {**bob_on_alice, "accept": "text/event-stream", "last-event-id": "1:0"}
            assert (await client.get(url, headers=resume)).status_code == 404
            assert (await client.delete(url, headers=bob_on_alice)).status_code == 404
            assert (await post(request("ping", id=8), alice)).json()["result"] == {}

            # Exercise the logging paths: a tool failure and a 503 (session cap).
            async with client.stream(
                "POST", url, content=call(9, "boom", {"after": 1}), headers=alice
            ) as r:
                await r.aread()
            bob = {**JSON_HEADERS, **_auth(bob_token)}
            assert (await post(init, bob)).status_code == 200
            full = await post(init, bob)
            assert full.status_code == 503
            assert int(full.headers["retry-after"]) >= 1

    # 3. The credential is in no server log record (hypercorn, quart, flowkit, trio, ...)
    # and no response.
    logged = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.args!r} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))  # the test's own client
    )
    for token in TOKENS:
        assert token not in logged
        assert all(token.encode() not in body for body in bodies)
    print(
        f"\nauth: {attempts} unauthenticated requests, all 401; {len(caplog.records)} log records clean"
    )
