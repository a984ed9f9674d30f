"""Issue 14, items 4 and 5: health endpoints and who may read metrics and dashboard.

Policy (docs/observability.md, "Access"): ``/metrics`` and ``/dashboard``
pass the endpoint's Host and Origin allow-lists and its auth hook;
``/healthz`` and ``/readyz`` answer any prober; ``--observe-bind`` moves the
first two to an address of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
import trio

from flowkit.mcp import EndpointConfig, InMemoryEventStore
from flowkit_http import MCPApp, MCPServer, Observability, ObservedApp
from tests.integration.http._serving import serving

from ._app import observed
from ._processes import flowkit_serve, free_port

PRIVATE = ["/metrics", "/dashboard", "/dashboard/dashboard.js"]


def _token(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    return "ops" if (b"authorization", b"Bearer s3cret") in headers else None


async def test_healthz_and_readyz_answer_probers() -> None:
    async with observed() as (_base, client, _probe):
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
        # A probe from elsewhere: an IP as Host, no Origin allowed, no credentials.
        probe = await client.get("/readyz", headers={"host": "10.1.2.3:8000"})
    assert (alive.status_code, alive.text) == (200, "ok\n")
    assert (ready.status_code, ready.text) == (200, "ready\n")
    assert alive.headers["cache-control"] == "no-store"
    assert probe.status_code == 200


async def test_readyz_is_503_before_the_lifespan_started() -> None:
    """An app served without lifespan never runs tool calls: not ready, yet alive."""
    server = MCPServer()
    mcp = MCPApp(server)
    app = ObservedApp(mcp, Observability(), mcp)
    transport = httpx.ASGITransport(app=app)  # no lifespan: MCPApp.running never entered
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert "lifespan" in ready.text


class _Store(InMemoryEventStore):
    """An event store that can be probed, as an external one would be."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if self.mode == "down":
            raise ConnectionError("store unreachable")
        if self.mode == "hangs":
            await trio.sleep_forever()


@pytest.mark.parametrize(
    ("mode", "status", "reason"),
    [("up", 200, "ready"), ("down", 503, "ConnectionError"), ("hangs", 503, "did not answer")],
)
async def test_readyz_probes_the_event_store(mode: str, status: int, reason: str) -> None:
    store = _Store(mode)
    server = MCPServer(event_store=store)
    async with observed(server, Observability(readiness_timeout=0.2)) as (_b, client, _p):
        ready = await client.get("/readyz")
    assert store.pings == 1
    assert ready.status_code == status
    assert reason in ready.text


async def test_metrics_and_dashboard_follow_the_endpoints_host_and_origin_lists() -> None:
    async with observed() as (_base, client, _probe):
        for path in PRIVATE:
            assert (await client.get(path)).status_code == 200, path
            rebinding = await client.get(path, headers={"host": "attacker.example"})
            assert (rebinding.status_code, rebinding.text) == (403, "Host not allowed\n")
            page = await client.get(path, headers={"origin": "https://attacker.example"})
            assert (page.status_code, page.text) == (403, "Origin not allowed\n")
            local = await client.get(path, headers={"origin": "http://localhost:3000"})
            assert local.status_code == 200
        post = await client.post("/metrics")
        assert (post.status_code, post.headers["allow"]) == (405, "GET")


async def test_metrics_and_dashboard_need_the_auth_hooks_credentials() -> None:
    server = MCPServer(config=EndpointConfig(authenticate=_token, www_authenticate="Bearer"))
    async with observed(server) as (_base, client, _probe):
        for path in PRIVATE:
            anonymous = await client.get(path)
            assert anonymous.status_code == 401, path
            assert anonymous.headers["www-authenticate"] == "Bearer"
            authorized = await client.get(path, headers={"authorization": "Bearer s3cret"})
            assert authorized.status_code == 200, path
        # Health stays open to probers without credentials.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


async def test_the_dashboard_page_loads_only_its_own_files() -> None:
    async with observed() as (_base, client, _probe):
        page = await client.get("/dashboard")
        script = await client.get("/dashboard/dashboard.js")
        slash = await client.get("/dashboard/")
    assert page.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert '<script src="/dashboard/dashboard.js">' in page.text
    assert slash.text == page.text  # the script is found with a trailing slash too
    assert "http://" not in page.text + script.text  # no CDN, nothing remote


async def test_observe_bind_moves_metrics_and_dashboard_off_the_main_address() -> None:
    side = free_port()
    async with (
        flowkit_serve("--demo", "--observe-bind", f"127.0.0.1:{side}") as base,
        httpx.AsyncClient(timeout=10) as client,
    ):
        for path in ("/metrics", "/dashboard"):
            assert (await client.get(f"{base}{path}")).status_code == 404, path
            assert (await client.get(f"http://127.0.0.1:{side}{path}")).status_code == 200, path
        assert (await client.get(f"{base}/healthz")).status_code == 200
        assert (await client.get(f"http://127.0.0.1:{side}/mcp")).status_code == 404


async def test_bad_observability_flags_get_one_line_errors() -> None:
    import subprocess
    import sys

    for flags, message in [
        (["--observe-bind", "nowhere"], "--observe-bind: expected HOST:PORT"),
        (["--metrics-path", "metrics"], "a path must start with '/'"),
        (
            ["--observe-bind", "127.0.0.1:9", "--no-metrics", "--no-dashboard"],
            "serves nothing",
        ),
    ]:
        done = await trio.to_thread.run_sync(
            lambda flags=flags: subprocess.run(
                [sys.executable, "-m", "flowkit_http", "serve", "--demo", *flags],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        )
        assert done.returncode == 1, done.stderr  # every CLI error: one line, status 1
        assert message in done.stderr
        assert "Traceback" not in done.stderr


async def test_mount_offers_the_routes_as_an_option() -> None:
    from quart_trio import QuartTrio

    from flowkit_http import mount

    plain = QuartTrio("plain")
    mount(plain, MCPServer())
    observed_app = QuartTrio("observed")
    mount(observed_app, MCPServer(), observe=Observability(dashboard=False))
    async with serving(plain) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/metrics")).status_code == 404
    async with serving(observed_app) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/dashboard")).status_code == 404
