"""Argument completion (``completion/complete``): completers and their result.

A prompt argument or a template variable may have a *completer*, the values
offered while the user types. Declared as a list, it offers the values that
start with what was typed (case-insensitively), in the list's order; declared
as a function ``(value, context) -> values`` (plain or async), it decides
itself, with ``context`` the arguments already resolved
(``context.arguments``, 2025-11-25 "Requesting Completions"). The result is
capped at 100 values, as the spec says, with ``total`` and ``hasMore``
telling the client what was cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["MAX_COMPLETIONS", "Completer", "CompleterSpec", "as_completers", "completion_result"]

MAX_COMPLETIONS = 100
"""The most values one ``completion/complete`` result carries ("Completion Results")."""

Completer = Callable[[str, Mapping[str, str]], Any]
"""``(value, context) -> iterable of str`` (or an awaitable of one)."""

CompleterSpec = Sequence[str] | Completer
"""What a declaration gives: the values themselves, or a :data:`Completer`."""


def _prefix_filter(values: Sequence[str]) -> Completer:
    choices = tuple(values)

    def complete(value: str, context: Mapping[str, str]) -> list[str]:
        typed = value.casefold()
        return [choice for choice in choices if choice.casefold().startswith(typed)]

    return complete


def as_completers(spec: Mapping[str, CompleterSpec] | None) -> dict[str, Completer]:
    """Declared completers, lists turned into prefix filters.

    Raises:
        TypeError: a list holds something other than strings.
    """
    completers: dict[str, Completer] = {}
    for name, given in (spec or {}).items():
        if callable(given):
            completers[name] = given
            continue
        if isinstance(given, str) or not all(isinstance(v, str) for v in given):
            raise TypeError(f"completion values for {name!r} must be a list of strings")
        completers[name] = _prefix_filter(given)
    return completers


def completion_result(values: Any) -> dict[str, Any]:
    """The ``CompleteResult`` for what a completer returned, capped at 100 values.

    Raises:
        TypeError: the completer returned something other than strings.
    """
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise TypeError(f"a completer must return strings, not {type(values).__name__}")
    found = list(values)
    if not all(isinstance(v, str) for v in found):
        raise TypeError("a completer must return strings")
    completion: dict[str, Any] = {"values": found[:MAX_COMPLETIONS], "total": len(found)}
    completion["hasMore"] = len(found) > MAX_COMPLETIONS
    return {"completion": completion}
