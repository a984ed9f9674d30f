"""flowkit: backpressure-aware stream processing on trio.

Compose small operators into pipelines::

    async with flowkit.open_pipeline(source, flowkit.map(f), flowkit.buffer(64)) as out:
        async for item in out:
            ...

Every operator follows one contract (``docs/operators.md``), which
:func:`flowkit.testing.check_operator` verifies, for built-in operators and
for your own.

The package loads lazily (PEP 562, as attrs does): ``import flowkit`` binds
the exception tree only, and the first access to an operator, channel or
pipeline name imports the module that defines it. So the sans-IO protocol
core, ``flowkit.mcp``, whose import runs this file, loads neither trio nor
any operator. Type checkers read the ``TYPE_CHECKING`` imports below, so
every public name is as visible to them as an eager import would make it.

Adding a public name takes three lines that tests keep in step: its
``TYPE_CHECKING`` import, its row in ``_LAZY`` and its entry in ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Pure (no trio): bound eagerly, so ``flowkit.mcp`` can derive its errors from them.
from ._exceptions import (
    CompletionTimeout,
    ContractViolation,
    FlowkitError,
    IdleTimeout,
    InitialTimeout,
    StreamAborted,
    StreamTimeout,
)

if TYPE_CHECKING:
    from . import mcp as mcp
    from . import testing as testing
    from ._acks import AckStatistics, AckTracker
    from ._batching import adaptive_batch, batch
    from ._broadcast import Branch, branch, broadcast
    from ._buffers import buffer
    from ._channel import ChannelStatistics, FlowReceiveChannel, FlowSendChannel, open_channel
    from ._combine import combine_latest, zip, zip_latest
    from ._concurrent import concurrent_map
    from ._event_time import event_time_window
    from ._failure import recover, try_map
    from ._fan import balance, merge
    from ._flat_map import flat_map
    from ._folds import fold, reduce, scan
    from ._join import join
    from ._keyed import GroupStatistics, group_by
    from ._lossy import conflate, drop_newest, drop_oldest, latest
    from ._operator import Operator
    from ._pipeline import Pipeline, Stage, open_pipeline, start_pipeline
    from ._restart import RestartSource, restart, restart_source
    from ._shapes import distinct, skip, skip_while, take, take_until, take_while
    from ._shaping import debounce, delay, sample, throttle_latest
    from ._sleep import sleep_until
    from ._stats import OperatorStatistics
    from ._tasks import aclose_shielded, ungrouped
    from ._timing import completion_timeout, idle_timeout, initial_timeout, keepalive, throttle
    from ._transform import filter, map
    from ._version import __version__
    from ._windows import Window, count_window, session_window, sliding_window, tumbling_window

__all__ = [
    "AckStatistics",
    "AckTracker",
    "Branch",
    "ChannelStatistics",
    "CompletionTimeout",
    "ContractViolation",
    "FlowReceiveChannel",
    "FlowSendChannel",
    "FlowkitError",
    "GroupStatistics",
    "IdleTimeout",
    "InitialTimeout",
    "Operator",
    "OperatorStatistics",
    "Pipeline",
    "RestartSource",
    "Stage",
    "StreamAborted",
    "StreamTimeout",
    "Window",
    "__version__",
    "aclose_shielded",
    "adaptive_batch",
    "balance",
    "batch",
    "branch",
    "broadcast",
    "buffer",
    "combine_latest",
    "completion_timeout",
    "concurrent_map",
    "conflate",
    "count_window",
    "debounce",
    "delay",
    "distinct",
    "drop_newest",
    "drop_oldest",
    "event_time_window",
    "filter",
    "flat_map",
    "fold",
    "group_by",
    "idle_timeout",
    "initial_timeout",
    "join",
    "keepalive",
    "latest",
    "map",
    "merge",
    "open_channel",
    "open_pipeline",
    "recover",
    "reduce",
    "restart",
    "restart_source",
    "sample",
    "scan",
    "session_window",
    "skip",
    "skip_while",
    "sleep_until",
    "sliding_window",
    "start_pipeline",
    "take",
    "take_until",
    "take_while",
    "throttle",
    "throttle_latest",
    "try_map",
    "tumbling_window",
    "ungrouped",
    "zip",
    "zip_latest",
]

# Defining module of every lazily bound public name.
_LAZY: dict[str, str] = {
    name: module
    for module, names in {
        # Folds, shapes, time shaping, failure handling, combining (issue 18, items 4-7).
        "._acks": ("AckStatistics", "AckTracker"),
        "._flat_map": ("flat_map",),
        "._folds": ("fold", "reduce", "scan"),
        "._shapes": ("distinct", "skip", "skip_while", "take", "take_until", "take_while"),
        "._shaping": ("debounce", "delay", "sample", "throttle_latest"),
        "._sleep": ("sleep_until",),
        "._failure": ("recover", "try_map"),
        "._restart": ("RestartSource", "restart", "restart_source"),
        "._combine": ("combine_latest", "zip", "zip_latest"),
        "._join": ("join",),
        "._batching": ("adaptive_batch", "batch"),
        "._broadcast": ("Branch", "branch", "broadcast"),
        "._buffers": ("buffer",),
        "._channel": ("ChannelStatistics", "FlowReceiveChannel", "FlowSendChannel", "open_channel"),
        "._concurrent": ("concurrent_map",),
        "._event_time": ("event_time_window",),
        "._fan": ("balance", "merge"),
        "._keyed": ("GroupStatistics", "group_by"),
        "._lossy": ("conflate", "drop_newest", "drop_oldest", "latest"),
        "._operator": ("Operator",),
        "._pipeline": ("Pipeline", "Stage", "open_pipeline", "start_pipeline"),
        "._stats": ("OperatorStatistics",),
        "._tasks": ("aclose_shielded", "ungrouped"),
        "._timing": (
            "completion_timeout",
            "idle_timeout",
            "initial_timeout",
            "keepalive",
            "throttle",
        ),
        "._transform": ("filter", "map"),
        # Lazy too: importlib.metadata loads socket, which the pure core must not.
        "._version": ("__version__",),
        "._windows": (
            "Window",
            "count_window",
            "session_window",
            "sliding_window",
            "tumbling_window",
        ),
    }.items()
    for name in names
}

# Public subpackages, reachable as attributes after a plain ``import flowkit``
# (``flowkit.testing.check_operator``), as they would be had they been imported.
_SUBPACKAGES = frozenset({"mcp", "testing"})


# Out of the type checker's sight: a module-level ``__getattr__`` would make it
# accept any misspelt ``flowkit.name`` as ``Any``; it reads the imports above.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Import the module behind a public name on first access, then bind the name here."""
        if name in _SUBPACKAGES:
            return importlib.import_module(f"{__name__}.{name}")  # the import binds it
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__, *_SUBPACKAGES})
