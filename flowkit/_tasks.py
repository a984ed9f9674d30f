"""Helpers for operators that run their own tasks or iterate what they were given.

Trio wraps every error that leaves a nursery in an exception group, but the
operator contract promises the *original* exception (a failing user
function, :class:`~flowkit.StreamAborted` from upstream, a timeout), never a
group. Stages with internal tasks run their nursery inside
:func:`ungrouped`, so callers see the same error a single-task stage would
raise, even when several tasks failed at once (three concurrent calls of a
``concurrent_map`` raising together): ``except ValueError`` must work. The
pipeline runner does the same for every stage, so a hand-written operator
with a nursery of its own keeps the promise too. And whoever iterates an
async iterator closes it, shielded, with :func:`aclose_shielded`.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["aclose_shielded", "ungrouped", "unwrapped"]

#: How many of the other errors a note names (the count is always exact).
_NAMED_OTHERS = 3


def unwrapped(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error to raise for ``group``: never a group, unless all were cancelled.

    ``Cancelled`` leaves are ignored: they are the other tasks being torn
    down because of the real error. A group of ``Cancelled`` only is
    returned as it is, for the enclosing cancel scope to absorb.

    When several tasks failed, the first failure wins, as in Akka Streams
    and Reactor: trio lists a nursery's errors in the order its tasks
    ended, so that is the one that happened first (an error that is not an
    ``Exception``, such as ``KeyboardInterrupt``, wins over any that is).
    A ``BrokenResourceError`` loses to any other error: it is the echo of a
    sibling that failed and closed its end of a channel, and since the
    contract reads it as "downstream left, return normally", letting it win
    would swallow the real failure (trio does not promise which of two
    tasks failing in one scheduler batch ends first).
    The others are not silently dropped: a note on the raised error counts
    and names them, and the group stays reachable as ``__context__``.

    The error is returned untouched otherwise, so ``raise error from
    error.__cause__`` keeps its cause (the original error behind a
    ``StreamAborted``) and its traceback, while hiding the group from the
    printed context.
    """
    real = [leaf for leaf in _leaves(group) if not isinstance(leaf, trio.Cancelled)]
    if not real:
        return group
    first = min(real, key=_rank)  # min is stable: the earliest of the best rank
    others = [leaf for leaf in real if leaf is not first]
    if others:
        named = ", ".join(reprlib.repr(leaf) for leaf in others[:_NAMED_OTHERS])
        more = f" and {len(others) - _NAMED_OTHERS} more" if len(others) > _NAMED_OTHERS else ""
        first.add_note(
            f"flowkit: {len(others)} other error(s) raised at the same time by "
            f"concurrent tasks were not propagated: {named}{more}"
        )
    return first


def _rank(error: BaseException) -> int:
    if not isinstance(error, Exception):
        return 0
    return 2 if isinstance(error, trio.BrokenResourceError) else 1


@contextmanager
def ungrouped() -> Iterator[None]:
    """Re-raise an exception group leaving the block as :func:`unwrapped` says."""
    try:
        yield
    except BaseExceptionGroup as group:
        error = unwrapped(group)
        if error is group:
            raise
        raise error from error.__cause__


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
