"""Issue 14, item 2: a real Prometheus scrapes a real ``flowkit serve``.

Debian's prometheus runs on 127.0.0.1 with a generated config (scrape every
second, storage in the test's tmp dir, one hour of retention), scraping the
demo server's ``/metrics``. After N tool calls, a PromQL query through
Prometheus's HTTP API returns N.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from tests.integration.http._raw import call, initialize

from ._processes import flowkit_serve, free_port, process

_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: flowkit
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""

CALLS = 7


async def _query(client: httpx.AsyncClient, api: str, promql: str) -> list[dict[str, object]]:
    response = await client.get(f"{api}/api/v1/query", params={"query": promql})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


async def test_prometheus_counts_the_calls_flowkit_served(
    prometheus_binary: str, tmp_path: Path
) -> None:
    async with flowkit_serve("--demo") as base, httpx.AsyncClient(timeout=30) as client:
        port = base.rsplit(":", 1)[1]
        (tmp_path / "prometheus.yml").write_text(_CONFIG.format(port=port))
        listen = f"127.0.0.1:{free_port()}"
        command = [
            prometheus_binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            "--storage.tsdb.retention.time=1h",
            f"--web.listen-address={listen}",
        ]
        headers = await initialize(client, f"{base}/mcp")
        for i in range(1, CALLS + 1):
            response = await client.post(
                f"{base}/mcp", content=call(i, "ticker", {"count": 3}), headers=headers
            )
            assert response.status_code == 200
            assert b'"result"' in response.content
        async with process(command, ready=b"Server is ready to receive web requests"):
            api = f"http://{listen}"
            promql = 'sum(flowkit_tool_calls_total{job="flowkit",tool="ticker",outcome="ok"})'
            result: list[dict[str, object]] = []
            with trio.fail_after(60):
                # Prometheus scrapes every second: wait for the first sample.
                for _attempt in range(600):
                    result = await _query(client, api, promql)
                    if result:
                        break
                    await trio.sleep(0.1)
            assert result, "prometheus never scraped flowkit"
            (sample,) = result
            value = sample["value"]
            assert isinstance(value, list)
            assert float(value[1]) == CALLS
            up = await _query(client, api, 'up{job="flowkit"}')
            assert [float(s["value"][1]) for s in up] == [1.0]  # type: ignore[index]
            # A histogram query works too: every call is under the +Inf bucket.
            buckets = await _query(
                client,
                api,
                'sum(flowkit_tool_call_duration_seconds_bucket{tool="ticker",le="+Inf"})',
            )
            assert float(buckets[0]["value"][1]) == CALLS  # type: ignore[index]
