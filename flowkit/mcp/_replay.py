"""The stateless era's multi round-trip requests (SEP-2322): replay from a sealed state.

A stateless-era tool that asks its client something cannot wait for the
answer: there is no channel back. So the call ends with an
``InputRequiredResult`` (``resultType: "input_required"``) carrying the
questions (``inputRequests``) and a ``requestState``; the client retries the
same call with a new id, the answers (``inputResponses``) and that state, and
the tool runs again from the start. :class:`Replay` is the tool context's
``ask`` for such a run: an answer given in any earlier round comes back at
once; the first unanswered question ends the run with the next
``InputRequiredResult``. Replay, rather than holding the call, is what lets
any instance serve the retry.

The state carries every answer so far, so it must be unreadable and
unforgeable by the client: it is sealed with AES-GCM (AEAD, from the
``cryptography`` package) under ``EndpointConfig.request_state_keys`` and
binds, as the spec recommends ("Server Requirements"), the principal, a
digest of the original request and an expiry. Whatever fails verification --
tampered bytes, an unknown key, another principal's state, another request's,
an expired one -- is refused with -32602 and one message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ._asks import ClientRequest, ClientRequestError
from ._errors import request_state_refused
from ._jsonrpc import RequestId
from ._toolcontext import InputRequired

__all__ = ["Replay", "RequestStateSealer", "request_digest", "start_replay"]

_VERSION = b"\x01"
_AAD = b"flowkit requestState v1"
_NONCE = 12
_KID = 4
_REFUSED = "requestState failed verification"


class RequestStateSealer:
    """Seals and opens ``requestState`` with AES-GCM under rotating keys.

    Args:
        keys: the keys (16, 24 or 32 bytes); the first seals, all open.
            Empty: one random key for this process (:attr:`ephemeral`).
        ttl: seconds a sealed state is valid.
        now: wall-clock seconds (``time.time``); injected, like every clock
            of the core. Wall time, not monotonic: another instance opens it.

    Raises:
        RuntimeError: the ``cryptography`` package is missing.
    """

    def __init__(self, keys: Sequence[bytes], ttl: float, now: Callable[[], float]) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise RuntimeError(
                "input-required results (2026-07-28) need the 'cryptography' package: "
                "pip install cryptography"
            ) from exc
        self.ephemeral = not keys
        keys = tuple(keys) or (os.urandom(32),)
        ciphers = [(hashlib.sha256(key).digest()[:_KID], AESGCM(key)) for key in keys]
        self._seal_with = ciphers[0]
        self._open_with = dict(ciphers)
        self._ttl = ttl
        self._now = now

    def seal(self, payload: dict[str, Any]) -> str:
        """``payload`` (with an expiry added) as an opaque, URL-safe string."""
        kid, cipher = self._seal_with
        nonce = os.urandom(_NONCE)
        plain = orjson.dumps({**payload, "exp": self._now() + self._ttl})
        return _encode(_VERSION + kid + nonce + cipher.encrypt(nonce, plain, _AAD))

    def open(self, token: str) -> dict[str, Any] | None:
        """The payload of a state this server sealed and that has not expired, else ``None``."""
        from cryptography.exceptions import InvalidTag

        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        head = len(_VERSION) + _KID + _NONCE
        if len(blob) <= head or blob[:1] != _VERSION or _encode(blob) != token:
            return None  # not ours, or not as we wrote it (base64's spare bits changed)
        cipher = self._open_with.get(blob[1 : 1 + _KID])
        if cipher is None:
            return None
        try:
            plain = cipher.decrypt(blob[1 + _KID : head], blob[head:], _AAD)
        except InvalidTag:
            return None
        payload = orjson.loads(plain)
        if not isinstance(payload, dict) or not payload.get("exp", 0) > self._now():
            return None
        return payload


def _encode(blob: bytes) -> str:
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def request_digest(method: str, params: Mapping[str, Any]) -> str:
    """A digest of a request's salient parts: its method and params minus the retry's own."""
    salient = {
        k: v for k, v in params.items() if k not in ("_meta", "inputResponses", "requestState")
    }
    body = orjson.dumps({"method": method, "params": salient}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


class Replay:
    """A :class:`~flowkit.mcp.ToolContext`'s ``ask`` in the stateless era.

    Attributes:
        call_id: stable across the rounds of the call.
        round: rounds before this run.
    """

    def __init__(
        self,
        sealer: RequestStateSealer,
        *,
        principal: str | None,
        digest: str,
        call_id: str,
        round: int = 0,
        answers: Mapping[str, Sequence[Any]] | None = None,
        pending: Mapping[str, str] | None = None,
        responses: Mapping[str, Any] | None = None,
    ) -> None:
        self._sealer = sealer
        self._principal = principal
        self._digest = digest
        self.call_id = call_id
        self.round = round
        # key -> [question digest, raw answer]: every answer of earlier rounds.
        self._answers: dict[str, list[Any]] = {k: list(v) for k, v in (answers or {}).items()}
        self._pending = dict(pending or {})  # key -> question digest, asked last round
        self._responses = dict(responses or {})  # this retry's inputResponses

    def _answer(self, request: ClientRequest) -> tuple[bool, Any]:
        assert request.key is not None
        digest = request.digest()
        known = self._answers.get(request.key)
        if known is not None and known[0] == digest:
            return True, known[1]
        # An answer in the retry counts if the question asked under its key
        # (when the state says) is this one; without a state it is the answer
        # to what the tool asks now: answers come from the client either way,
        # the seal protects the earlier rounds' and the binding.
        asked = self._pending.get(request.key, digest)
        if asked == digest and request.key in self._responses:
            raw = self._responses[request.key]
            try:
                request.parse(raw)
            except ClientRequestError:
                return False, None  # malformed: asked again ("Error Handling": re-request)
            self._answers[request.key] = [digest, raw]
            return True, raw
        return False, None

    async def __call__(self, requests: Sequence[ClientRequest]) -> list[Any]:
        found = [self._answer(request) for request in requests]
        missing = [request for request, (ok, _) in zip(requests, found, strict=True) if not ok]
        if missing:
            raise InputRequired(self.input_required(missing))
        return [raw for _, raw in found]

    def input_required(self, requests: Sequence[ClientRequest]) -> dict[str, Any]:
        """The ``InputRequiredResult`` asking ``requests``, with the next sealed state."""
        state = {
            "p": self._principal,
            "d": self._digest,
            "id": self.call_id,
            "r": self.round + 1,
            "a": self._answers,
            "q": {request.key: request.digest() for request in requests},
        }
        return {
            "resultType": "input_required",
            "inputRequests": {request.key: request.to_json() for request in requests},
            "requestState": self._sealer.seal(state),
        }


def start_replay(
    sealer: RequestStateSealer,
    method: str,
    params: Mapping[str, Any],
    principal: str | None,
    request_id: RequestId,
) -> Replay:
    """The replay of a stateless-era request from its ``requestState`` and ``inputResponses``.

    Raises:
        RemoteProtocolError: -32602, the state fails verification (tampered,
            unknown key, expired, another principal's or request's) or the
            fields are not a string and an object of objects. Unexpected keys
            inside ``inputResponses`` are ignored, as the spec asks.
    """
    token = params.get("requestState")
    responses = params.get("inputResponses")
    if responses is not None and not (
        isinstance(responses, dict) and all(isinstance(v, dict) for v in responses.values())
    ):
        raise request_state_refused('"inputResponses" must be an object of objects', request_id)
    digest = request_digest(method, params)
    if token is None:
        return Replay(sealer, principal=principal, digest=digest, call_id=secrets.token_urlsafe(12))
    if not isinstance(token, str):
        raise request_state_refused('"requestState" must be a string', request_id)
    state = sealer.open(token)
    if state is None or state.get("p") != principal or state.get("d") != digest:
        raise request_state_refused(_REFUSED, request_id)
    try:
        return Replay(
            sealer,
            principal=principal,
            digest=digest,
            call_id=str(state["id"]),
            round=int(state["r"]),
            answers=state["a"],
            pending=state["q"],
            responses=responses,
        )
    except (KeyError, TypeError, ValueError) as exc:  # sealed by us, yet not ours: a bug
        raise request_state_refused(_REFUSED, request_id) from exc
