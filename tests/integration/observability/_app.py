"""Helpers of the observability tests: the test server with its routes, and scrapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from flowkit_http import MCPServer, Observability, create_app
from tests.integration.http._raw import call, initialize
from tests.integration.http._serving import serving
from tests.integration.http._tools import Probe, make_server


@asynccontextmanager
async def observed(
    server: MCPServer | None = None, observe: Observability | None = None
) -> AsyncIterator[tuple[str, httpx.AsyncClient, Probe | None]]:
    """The test server (or ``server``) with ``observe``'s routes on a real hypercorn."""
    probe = None
    if server is None:
        server, probe = make_server()
    app = create_app(server, observe=observe if observe is not None else Observability())
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield base, client, probe


async def scrape(client: httpx.AsyncClient, path: str = "/metrics") -> dict[str, Any]:
    """``{family name: family}`` of one scrape, parsed by prometheus_client's parser."""
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: dict[str, Any], sample: str, **labels: str) -> float:
    """The value of the one sample named ``sample`` with exactly these labels."""
    family_name = sample
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if sample.endswith(suffix) and sample[: -len(suffix)] in families:
            family_name = sample[: -len(suffix)]
    found: list[Sample] = [
        s for s in families[family_name].samples if s.name == sample and s.labels == labels
    ]
    assert len(found) == 1, (sample, labels, families[family_name].samples)
    return float(found[0].value)


async def run_call(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    id: int,
    tool: str,
    arguments: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> httpx.Response:
    body = call(id, tool, arguments)
    if meta is not None:
        import orjson

        message = orjson.loads(body)
        message["params"]["_meta"].update(meta)
        body = orjson.dumps(message)
    response = await client.post("/mcp", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def session(client: httpx.AsyncClient) -> dict[str, str]:
    return await initialize(client, str(client.base_url.join("/mcp")))
