"""Protocol revisions as data.

Everything that differs between MCP revisions at the transport level is a
field of :class:`VersionPolicy`, and the set of revisions we speak is the
:data:`VERSIONS` table. Handlers consult the policy of the revision in force
instead of comparing version strings, so adding a revision (the stateless
2026-07-28 era) is a new row plus the handlers only it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ._errors import INVALID_PARAMS, RESOURCE_NOT_FOUND

__all__ = [
    "LATEST_HANDSHAKE_VERSION",
    "VERSIONS",
    "VersionPolicy",
    "negotiate_version",
]


@attrs.frozen
class VersionPolicy:
    """What one protocol revision means for the HTTP transport.

    Attributes:
        version: the revision string, e.g. ``"2025-11-25"``.
        handshake: ``initialize`` / ``notifications/initialized`` exist.
        sessions: the server assigns ``Mcp-Session-Id`` at initialisation and
            requires it afterwards; DELETE ends a session.
        get_stream: GET opens a standalone server-to-client SSE stream.
        resumable: SSE events carry ids and GET + ``Last-Event-ID`` resumes.
        disconnect_cancels: closing a request's response stream cancels the
            request (otherwise only ``notifications/cancelled`` does).
        request_meta: every request carries its protocol version and client
            capabilities in ``params._meta`` (stateless era).
        method_headers: ``Mcp-Method`` / ``Mcp-Name`` headers are required
            and must match the body.
        result_type: results carry ``resultType: "complete"``; cacheable ones
            (``tools/list``, ``server/discover``) also ``ttlMs``/``cacheScope``.
        unknown_method_status: HTTP status of a -32601 reply (the stateless
            era answers 404 so clients can tell a modern server's refusal).
        capability_error_status: HTTP status of a -32021 reply (a call
            needing a client capability the client did not declare; the
            stateless era says 400).
        resource_not_found_code: JSON-RPC code of a ``resources/read`` of an
            unknown URI (-32002 before SEP-2164, -32602 since).
    """

    version: str
    handshake: bool
    sessions: bool
    get_stream: bool
    resumable: bool
    disconnect_cancels: bool
    request_meta: bool = False
    method_headers: bool = False
    result_type: bool = False
    unknown_method_status: int = 200
    capability_error_status: int = 200
    resource_not_found_code: int = RESOURCE_NOT_FOUND


def _handshake_era(version: str) -> VersionPolicy:
    return VersionPolicy(
        version=version,
        handshake=True,
        sessions=True,
        get_stream=True,
        resumable=True,
        disconnect_cancels=False,
    )


VERSIONS: Mapping[str, VersionPolicy] = MappingProxyType(
    {
        # Streamable HTTP first appeared in 2025-03-26; 2025-06-18 added the
        # MCP-Protocol-Version header and dropped batches; 2025-11-25 added
        # priming events and server-initiated connection close. At the level
        # this core works, the three behave alike.
        "2025-03-26": _handshake_era("2025-03-26"),
        "2025-06-18": _handshake_era("2025-06-18"),
        "2025-11-25": _handshake_era("2025-11-25"),
        # The stateless era: no handshake, no sessions, every request carries
        # its version and capabilities in _meta and mirrors method and name
        # into headers; closing the response stream cancels the request.
        "2026-07-28": VersionPolicy(
            version="2026-07-28",
            handshake=False,
            sessions=False,
            get_stream=False,
            resumable=False,
            disconnect_cancels=True,
            request_meta=True,
            method_headers=True,
            result_type=True,
            unknown_method_status=404,
            capability_error_status=400,
            resource_not_found_code=INVALID_PARAMS,
        ),
    }
)
"""Every revision the endpoint accepts, oldest first. One endpoint serves both
eras: ``initialize`` selects a handshake revision for a session, a request
with per-request ``_meta`` is served statelessly (2026-07-28 "Versioning":
dual-era servers)."""

LATEST_HANDSHAKE_VERSION = "2025-11-25"
"""What ``initialize`` answers when the client asks for a revision we lack."""


def negotiate_version(requested: str, supported: Mapping[str, VersionPolicy]) -> VersionPolicy:
    """Pick the revision for a new session ("Version Negotiation").

    The client's revision if we support it with a handshake, else our latest
    handshake revision: the client then decides whether it can live with it.
    """
    policy = supported.get(requested)
    if policy is not None and policy.handshake:
        return policy
    return supported[LATEST_HANDSHAKE_VERSION]
