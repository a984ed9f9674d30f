"""Argument checks shared by the operators, channels and the protocol core.

Pure (no trio), so ``flowkit.mcp`` uses it too. One rule per check, written
once: an operator that accepted ``True`` as a size while its neighbour
refused it is the inconsistency this module exists to prevent.
"""

from __future__ import annotations

__all__ = ["check_count"]


def check_count(value: object, what: str) -> int:
    """Return ``value`` if it is a count: an ``int`` of at least 1.

    ``True`` is an ``int`` to Python but never a count: ``buffer(True)`` is a
    mistake, not a buffer of one, so it is refused like ``0``, ``1.5`` or
    ``"3"``.

    Args:
        value: what the caller passed.
        what: the argument's name, for the message.

    Raises:
        ValueError: ``value`` is not a count; the message names ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    return value
