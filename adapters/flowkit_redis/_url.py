"""Where Redis is: a parsed ``redis://`` / ``rediss://`` URL whose password never prints.

The URL is the one setting users give (``flowkit serve --redis URL``,
``FLOWKIT_REDIS_URL``); it may carry ``user:password@``. Everything that
logs or reprs a location goes through :meth:`RedisURL.redacted`, so the
password cannot reach a log line, a traceback's repr or an error message.
"""

from __future__ import annotations

import urllib.parse

import attrs

__all__ = ["RedisURL"]

_SCHEMES = {"redis": False, "rediss": True}
_DEFAULT_PORT = 6379


@attrs.frozen(repr=False)
class RedisURL:
    """A Redis server's address and credentials.

    Attributes:
        host: hostname or IP address.
        port: TCP port.
        db: database number (the URL's path, ``/0`` by default).
        tls: ``rediss://``: connect over TLS.
        username: ACL user, if the URL names one.
        password: the secret; shown by no repr, str or message.
    """

    host: str
    port: int = _DEFAULT_PORT
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, eq=False)

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        """Parse ``redis[s]://[user[:password]@]host[:port][/db]``.

        Raises:
            ValueError: a one-line message naming what is wrong, with the
                password (if any) redacted.
        """
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a Redis URL ({exc}): {_redact_text(url)}") from None
        if parts.scheme not in _SCHEMES:
            raise ValueError(
                f"a Redis URL starts with redis:// or rediss://, not {parts.scheme or '(none)'}://"
                f": {_redact_text(url)}"
            )
        if not parts.hostname:
            raise ValueError(f"the Redis URL names no host: {_redact_text(url)}")
        path = parts.path.strip("/")
        if path and not (path.isascii() and path.isdigit()):
            raise ValueError(f"the Redis URL's path must be a database number: {_redact_text(url)}")
        return cls(
            host=parts.hostname,
            port=port if port is not None else _DEFAULT_PORT,
            db=int(path) if path else 0,
            tls=_SCHEMES[parts.scheme],
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
        )

    def redacted(self) -> str:
        """The URL with the password replaced by ``***``: safe to log."""
        scheme = "rediss" if self.tls else "redis"
        user = urllib.parse.quote(self.username, safe="") if self.username else ""
        credentials = f"{user}:***@" if self.password else (f"{user}@" if user else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{credentials}{host}:{self.port}/{self.db}"

    def __repr__(self) -> str:
        return f"RedisURL({self.redacted()!r})"

    __str__ = redacted


def _redact_text(url: str) -> str:
    """Best effort for text that did not parse: drop everything before ``@``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "(unparsable)" if "@" in url else url
    _, at, host = rest.rpartition("@")
    return f"{scheme}://***@{host}" if at else url
