"""Negotiation: which protocol revision a :class:`~flowkit_client.Client` speaks.

``server/discover`` first (the 2026-07-28 era, stateless) when ``era`` is
``"auto"``, else, or when the server does not know it, the 2025-11-25
``initialize`` handshake. Once settled, ``client.policy`` is the core's
:data:`flowkit.mcp.VERSIONS` row of that revision, and everything that
differs between the eras is read from it, never from version strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from flowkit.mcp import LATEST_HANDSHAKE_VERSION, UNSUPPORTED_PROTOCOL_VERSION, VERSIONS

from ._events import ServerInfo
from ._exceptions import HTTPStatusError, ProtocolError, RPCError

if TYPE_CHECKING:
    from flowkit.mcp import VersionPolicy

    from ._wire import Reply

__all__ = ["META", "MODERN_VERSION", "negotiate"]

META = "io.modelcontextprotocol/"
MODERN_VERSION = max(v for v, policy in VERSIONS.items() if policy.request_meta)


class Client(Protocol):
    """What negotiation reads and settles on :class:`flowkit_client.Client`.

    A protocol rather than an import, so ``_client`` (which calls
    :func:`negotiate`) and this module do not import each other.
    """

    policy: VersionPolicy
    server: ServerInfo
    _client_info: dict[str, str]
    _session_id: str | None
    _log_level: str | None

    def _capabilities(self) -> dict[str, Any]: ...

    async def request(self, method: str, params: Mapping[str, Any] | None = None) -> Any: ...

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None: ...

    async def _exchange(
        self,
        method: str,
        params: dict[str, Any],
        *,
        on_open: Callable[[Reply], None] | None = None,
    ) -> Any: ...


async def negotiate(client: Client, era: str) -> None:
    """Settle the revision: ``server/discover``, else (or for ``era``) the handshake."""
    if era != LATEST_HANDSHAKE_VERSION:
        client.policy = VERSIONS[MODERN_VERSION]
        try:
            found = await _discover(client)
        except (RPCError, HTTPStatusError, ProtocolError):
            if era == MODERN_VERSION:
                raise
        else:
            versions = found.get("supportedVersions") or []
            if client.policy.version in versions:
                meta = found.get("_meta") or {}
                info = found.get("serverInfo") or meta.get(META + "serverInfo") or {}
                client.server = _server_info(client.policy.version, found, info)
                return
            if era == MODERN_VERSION:
                raise ProtocolError(f"the server offers {versions}, not {MODERN_VERSION}")
    await _handshake(client)


async def _discover(client: Client) -> Any:
    """``server/discover``, once more if refused with -32022 naming a version we speak.

    "Versioning" (2026-07-28): a server that does not serve the requested
    revision answers -32022 with ``data.supported``; the client should
    retry with one of those rather than give up on the era.
    """
    try:
        return await client.request("server/discover")
    except RPCError as exc:
        supported = exc.data.get("supported") if isinstance(exc.data, dict) else None
        ours = [
            v
            for v in supported or ()
            if isinstance(v, str) and v in VERSIONS and VERSIONS[v].request_meta
        ]
        if exc.code != UNSUPPORTED_PROTOCOL_VERSION or not ours:
            raise
        client.policy = VERSIONS[max(ours)]
        return await client.request("server/discover")


def _server_info(version: str, result: Mapping[str, Any], info: Any) -> ServerInfo:
    info = info if isinstance(info, Mapping) else {}
    caps = result.get("capabilities")
    return ServerInfo(
        version,
        caps if isinstance(caps, Mapping) else {},
        str(info.get("name", "")),
        str(info.get("version", "")),
        result.get("instructions"),
    )


async def _handshake(client: Client) -> None:
    client.policy = VERSIONS[LATEST_HANDSHAKE_VERSION]
    params = {
        "protocolVersion": LATEST_HANDSHAKE_VERSION,
        "capabilities": client._capabilities(),
        "clientInfo": client._client_info,
    }

    def session(reply: Reply) -> None:
        client._session_id = reply.session_id

    result = await client._exchange("initialize", params, on_open=session)
    version = result.get("protocolVersion")
    policy = VERSIONS.get(version) if isinstance(version, str) else None
    if policy is None or not policy.handshake:
        raise ProtocolError(f"the server chose protocol version {version!r}, which we lack")
    client.policy = policy
    client.server = _server_info(version, result, result.get("serverInfo"))
    await client.notify("notifications/initialized")
    if client._log_level is not None and "logging" in client.server.capabilities:
        await client.request("logging/setLevel", {"level": client._log_level})
