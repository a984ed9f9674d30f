"""flowkit: backpressure-aware stream processing on trio.

Compose small operators into pipelines::

    async with flowkit.open_pipeline(source, flowkit.map(f), flowkit.buffer(64)) as out:
        async for item in out:
            ...

Every operator follows one contract (``docs/operators.md``), which
:func:`flowkit.testing.check_operator` verifies, for built-in operators and
for your own.
"""

from ._batching import adaptive_batch, batch
from ._broadcast import Branch, branch, broadcast
from ._buffers import buffer
from ._channel import ChannelStatistics, FlowReceiveChannel, FlowSendChannel, open_channel
from ._concurrent import concurrent_map
from ._exceptions import (
    CompletionTimeout,
    FlowkitError,
    IdleTimeout,
    InitialTimeout,
    StreamAborted,
    StreamTimeout,
)
from ._fan import balance, merge
from ._lossy import conflate, drop_newest, drop_oldest, latest
from ._operator import Operator
from ._pipeline import Pipeline, Stage, open_pipeline, start_pipeline
from ._stats import OperatorStatistics
from ._timing import completion_timeout, idle_timeout, initial_timeout, keepalive, throttle
from ._transform import filter, map
from ._version import __version__

__all__ = [
    "Branch",
    "ChannelStatistics",
    "CompletionTimeout",
    "FlowReceiveChannel",
    "FlowSendChannel",
    "FlowkitError",
    "IdleTimeout",
    "InitialTimeout",
    "Operator",
    "OperatorStatistics",
    "Pipeline",
    "Stage",
    "StreamAborted",
    "StreamTimeout",
    "__version__",
    "adaptive_batch",
    "balance",
    "batch",
    "branch",
    "broadcast",
    "buffer",
    "completion_timeout",
    "concurrent_map",
    "conflate",
    "drop_newest",
    "drop_oldest",
    "filter",
    "idle_timeout",
    "initial_timeout",
    "keepalive",
    "latest",
    "map",
    "merge",
    "open_channel",
    "open_pipeline",
    "start_pipeline",
    "throttle",
]
