"""Helpers for operators that run their own tasks or iterate what they were given.

Trio wraps every error that leaves a nursery in an exception group, but the
operator contract promises the *original* exception (a failing user
function, :class:`~flowkit.StreamAborted` from upstream, a timeout). Stages
with internal tasks funnel their nursery's group through
:func:`unwrapped` so callers see the same error a single-task stage
would raise. And whoever iterates an async iterator closes it, shielded,
with :func:`aclose_shielded`.
"""

from __future__ import annotations

from collections.abc import Iterator

import trio

__all__ = ["aclose_shielded", "unwrapped"]


def unwrapped(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error in ``group`` (to ``raise``), or ``group`` itself.

    ``Cancelled`` leaves are ignored: they are the other tasks being torn
    down because of the real error. The error is returned untouched, so
    ``raise error from error.__cause__`` keeps its cause (the original
    error behind a ``StreamAborted``) and its traceback, while hiding the
    group from the printed context.
    """
    real = [leaf for leaf in _leaves(group) if not isinstance(leaf, trio.Cancelled)]
    return real[0] if len(real) == 1 else group


async def aclose_shielded(iterator: object) -> None:
    """Close ``iterator`` if it can be closed (an async generator can), shielded from cancellation.

    Code that stops iterating an async generator must close it on every
    path, or the generator's ``finally`` runs later in the garbage collector,
    outside any nursery, if at all. The close is shielded because the usual
    reason to stop is a cancellation, which would otherwise interrupt the
    generator's own cleanup at its first ``await``.
    """
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with trio.CancelScope(shield=True):
            await aclose()


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
