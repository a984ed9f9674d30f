"""Cursor pagination, shared by every ``*/list`` method ("Pagination").

A cursor is opaque to the client: here it is the position of the next page,
base64-encoded behind a prefix naming the list, so a cursor of one list is
refused by another and a made-up one is refused everywhere. Invalid cursors
get -32602, as the spec says they SHOULD.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

from ._errors import RemoteProtocolError, method_params

__all__ = ["paginate"]

T = TypeVar("T")
_MAX_CURSOR = 64


def paginate(
    items: Sequence[T], cursor: Any, page_size: int, kind: str
) -> tuple[list[T], str | None]:
    """One page of ``items`` starting at ``cursor``, and the next page's cursor.

    Args:
        items: the whole list, in its deterministic order.
        cursor: the request's ``cursor`` (``None``: the first page).
        page_size: items per page.
        kind: names the list (``"tools"``, ``"resources"``...) inside the cursor.

    Raises:
        RemoteProtocolError: -32602 if the cursor is not one this list issued.
    """
    start = 0 if cursor is None else _decode(cursor, kind)
    if start > len(items):
        raise _bad_cursor()
    end = start + page_size
    next_cursor = _encode(end, kind) if end < len(items) else None
    return list(items[start:end]), next_cursor


def _prefix(kind: str) -> bytes:
    return f"flowkit-{kind}:".encode("ascii")


def _bad_cursor() -> RemoteProtocolError:
    return method_params("Invalid cursor", None)


def _encode(position: int, kind: str) -> str:
    return base64.urlsafe_b64encode(_prefix(kind) + str(position).encode()).decode("ascii")


def _decode(cursor: Any, kind: str) -> int:
    if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR:
        raise _bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise _bad_cursor() from None
    prefix = _prefix(kind)
    if not raw.startswith(prefix):
        raise _bad_cursor()
    digits = raw[len(prefix) :]
    if not digits.isdigit() or len(digits) > 9:
        raise _bad_cursor()
    return int(digits)
