"""``flowkit serve``'s limit flags: each parsed, checked, shown in ``--help`` and applied.

Three groups, by what they configure:

* the server's own limits (:class:`~flowkit_http._serve.ServeLimits`:
  connections, request bodies), for any target;
* the endpoint's (:class:`~flowkit.mcp.EndpointConfig`: sessions, calls,
  the detached-call grace, trusted proxies), for an ``MCPServer`` target
  (an app built elsewhere has its config already);
* the in-memory event store's byte bounds, for an ``MCPServer`` that keeps
  the default store (not ``--redis``, not a store of its own);
* and, from the environment rather than argv (where ``ps`` would show
  them), ``$FLOWKIT_REQUEST_STATE_KEYS``: the keys sealing ``requestState``.

A bad value is a one-line usage error (exit 1) naming the flag; a flag left
out keeps the target's own setting. Defaults shown in ``--help`` are read
from the classes, so they cannot drift from what runs.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ipaddress
import math
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import attrs

from flowkit.mcp import EndpointConfig, InMemoryEventStore

from ._serve import ServeLimits
from ._server import MCPServer

__all__ = ["add_arguments", "apply", "new_request_state_key", "request_state_keys"]

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_BYTES = re.compile(r"(\d+)\s*([kmg]?)(?:i?b)?", re.IGNORECASE)


def byte_count(text: str) -> int:
    """``4096``, ``512KiB``, ``64MiB``, ``1G``: a size in bytes, at least 1."""
    match = _BYTES.fullmatch(text.strip())
    if match is None or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size in bytes (at least 1; e.g. 4096, 512KiB, 64MiB)"
        )
    return int(match[1]) * _UNITS[match[2].lower()]


def count(text: str) -> int:
    """A whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def count_or_off(text: str) -> int:
    """A whole number, at least 1, or ``off`` (0)."""
    return 0 if text == "off" else count(text)


def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def seconds_or_off(text: str) -> float | None:
    """Seconds, or ``off`` for no time limit."""
    return None if text.strip().lower() == "off" else seconds(text)


def address(text: str) -> str:
    """An IP address, written as the server sees peers (``::1``, not ``[::1]``)."""
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


@attrs.frozen
class _Flag:
    flag: str
    field: str
    type: Callable[[str], Any]
    metavar: str
    help: str


def _shown(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, int) and value >= 1024 * 1024 and not value % (1024 * 1024):
        return f"{value // (1024 * 1024)} MiB"
    return f"{value:g} s" if isinstance(value, float) else str(value)


_LIMITS = ServeLimits()
_CONFIG = EndpointConfig()
_STORE = InMemoryEventStore()

_SERVER_FLAGS = (
    _Flag("--max-connections", "max_connections", count, "N", "open connections at most; "
          "more are answered 503 and closed"),
    _Flag("--body-timeout", "body_timeout", seconds, "S", "seconds a request body may take "
          "to arrive; else 408 and the connection closes"),
    _Flag("--body-budget", "body_budget", byte_count, "BYTES", "bytes all unfinished request "
          "bodies may hold together; else 503 + Retry-After"),
    _Flag("--accept-pacing", "accept_pacing", count_or_off, "N|off", "requests being worked "
          "on from which a new connection waits (20 ms at most) to be accepted; also the "
          "most handshakes (first requests naming no session or call) worked on at once"),
)  # fmt: skip
_ENDPOINT_FLAGS = (
    _Flag("--max-sessions", "max_sessions", count, "N", "live sessions at most; initialize "
          "beyond it gets 503 + Retry-After"),
    _Flag("--max-sessions-per-client", "max_sessions_per_client", count, "N", "live sessions "
          "one client (its principal, else its address) may hold; beyond it 429"),
    _Flag("--trusted-proxy", "trusted_proxies", address, "ADDR", "a proxy whose "
          "X-Forwarded-For names the client (repeat for several)"),
    _Flag("--session-idle-timeout", "session_idle_timeout", seconds, "S", "seconds an idle "
          "session with no client attached lives"),
    _Flag("--handshake-timeout", "handshake_timeout", seconds_or_off, "S|off", "seconds a "
          "session may wait for notifications/initialized"),
    _Flag("--detached-grace", "detached_call_grace", seconds_or_off, "S|off", "seconds a "
          "call may run with its client gone (2025 era) before it is cancelled"),
    _Flag("--max-calls", "max_calls", count, "N", "tool calls in flight on the server; "
          "beyond it 429 + Retry-After"),
    _Flag("--max-calls-per-session", "max_calls_per_session", count, "N", "tool calls in "
          "flight per session; beyond it 429 + Retry-After"),
    _Flag("--max-body-size", "max_body_size", byte_count, "BYTES", "largest request body; "
          "else 413"),
)  # fmt: skip
_STORE_FLAGS = (
    _Flag("--store-max-bytes", "max_bytes", byte_count, "BYTES", "bytes of resumable events "
          "kept for the whole server"),
    _Flag("--store-max-bytes-per-session", "max_bytes_per_session", byte_count, "BYTES",
          "bytes of resumable events kept per session"),
    _Flag("--store-max-bytes-per-stream", "max_bytes_per_stream", byte_count, "BYTES",
          "bytes of resumable events kept per stream"),
)  # fmt: skip


_ABSENT: Any = object()


def _dest(flag: _Flag) -> str:
    return flag.flag.removeprefix("--").replace("-", "_")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The limit flags, in three groups of ``--help``, defaults read off the classes."""
    groups: tuple[tuple[str, tuple[_Flag, ...], object], ...] = (
        ("server limits", _SERVER_FLAGS, _LIMITS),
        ("endpoint limits (an MCPServer target or --demo)", _ENDPOINT_FLAGS, _CONFIG),
        (
            "event store bounds (the default in-memory store; oldest events evicted "
            "first, a detached lossless call pauses instead)",
            _STORE_FLAGS,
            _STORE,
        ),
    )
    for title, flags, defaults in groups:
        group = parser.add_argument_group(title)
        for flag in flags:
            shown = (
                "none" if flag.field == "trusted_proxies" else _shown(getattr(defaults, flag.field))
            )
            group.add_argument(
                flag.flag,
                type=flag.type,
                metavar=flag.metavar,
                default=argparse.SUPPRESS,  # absent unless given (``off`` is None)
                action="append" if flag.field == "trusted_proxies" else "store",
                help=f"{flag.help} (default {shown})",
            )


def request_state_keys(text: str) -> tuple[bytes, ...]:
    """``$FLOWKIT_REQUEST_STATE_KEYS``: comma-separated base64url AES keys, the sealing one first.

    Give every instance the same list (``docs/serving.md``, "Asking the
    client"); a key is rotated in by putting the new one first.

    Raises:
        ValueError: a part that is not base64url, or not 16, 24 or 32 bytes.
    """
    keys = []
    for part in text.split(","):
        try:
            part = part.strip()
            key = base64.b64decode(part + "=" * (-len(part) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a key is not base64url") from None
        if len(key) not in (16, 24, 32):
            raise ValueError(f"keys are 16, 24 or 32 bytes, not {len(key)}")
        keys.append(key)
    return tuple(keys)


def new_request_state_key() -> str:
    """A fresh random 256-bit key, as ``$FLOWKIT_REQUEST_STATE_KEYS`` takes it (``flowkit keygen``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def apply(
    args: argparse.Namespace,
    target: Any,
    fail: Callable[[str], NoReturn],
    environ: Mapping[str, str] | None = None,
) -> ServeLimits:
    """Apply the endpoint and store flags given to ``target``; the server's limits.

    ``fail`` reports a flag that does not apply (one line, exit 1).
    ``environ`` holds ``FLOWKIT_REQUEST_STATE_KEYS``, if set.
    """
    given: dict[_Flag, Any] = {
        flag: value
        for flag in (*_ENDPOINT_FLAGS, *_STORE_FLAGS)
        if (value := getattr(args, _dest(flag), _ABSENT)) is not _ABSENT
    }
    if given and not isinstance(target, MCPServer):
        fail(f"{next(iter(given)).flag} applies to an MCPServer target (or --demo)")
    endpoint = {f.field: v for f, v in given.items() if f in _ENDPOINT_FLAGS}
    keys = (environ or {}).get("FLOWKIT_REQUEST_STATE_KEYS")
    if keys:
        if not isinstance(target, MCPServer):
            fail("FLOWKIT_REQUEST_STATE_KEYS applies to an MCPServer target (or --demo)")
        try:
            endpoint["request_state_keys"] = request_state_keys(keys)
        except ValueError as exc:
            fail(f"FLOWKIT_REQUEST_STATE_KEYS: {exc}")
    if "trusted_proxies" in endpoint:
        endpoint["trusted_proxies"] = tuple(endpoint["trusted_proxies"])
    store = {f.field: v for f, v in given.items() if f in _STORE_FLAGS}
    if store:
        first = next(f.flag for f in given if f in _STORE_FLAGS)
        if args.redis:
            fail(f"{first} bounds the in-memory event store, not --redis")
        if target.event_store is not None:
            fail(f"{first}: this server has an event store of its own")
        target.event_store = InMemoryEventStore(**store)
    try:
        if endpoint:
            target.config = attrs.evolve(target.config, **endpoint)
        return ServeLimits(
            **{
                f.field: value
                for f in _SERVER_FLAGS
                if (value := getattr(args, _dest(f), _ABSENT)) is not _ABSENT
            }
        )
    except ValueError as exc:
        fail(f"invalid limit: {exc}")
