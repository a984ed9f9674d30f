"""The consumer-group sources and stream sinks alive in this process (for ``/metrics``).

Each :class:`~flowkit_redis.GroupSource` and :class:`~flowkit_redis.StreamSink`
files itself here when made; weakly, so one the program dropped leaves by
itself and nothing has to be unregistered. An exporter (``flowkit_http``'s
``/metrics``) reads their statistics at scrape time, so an app exposes the
sources and sinks its tools use without wiring them to it.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._groups import GroupSource
    from ._sink import StreamSink

__all__ = ["live_sinks", "live_sources"]

_sources: weakref.WeakSet[GroupSource] = weakref.WeakSet()
_sinks: weakref.WeakSet[StreamSink] = weakref.WeakSet()


def file_source(source: GroupSource) -> None:
    _sources.add(source)


def file_sink(sink: StreamSink) -> None:
    _sinks.add(sink)


def live_sources() -> list[GroupSource]:
    """The group sources not yet garbage-collected, in no particular order."""
    return list(_sources)


def live_sinks() -> list[StreamSink]:
    """The stream sinks not yet garbage-collected, in no particular order."""
    return list(_sinks)
