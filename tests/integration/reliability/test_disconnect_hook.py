"""Under ``flowkit serve`` an open response learns of its client leaving from the connection.

``flowkit_http._serve`` puts each HTTP/1 connection in its requests' ASGI
``state`` (``flowkit_http._asgi.Connection``): whatever ends the connection
(an end of file, a failed send, a close) ends the response on it, so no
task per response waits for ``http.disconnect`` (docs/benchmarks.md, idle
streams). These tests check that the path is taken and that it is as quick
as the watcher it replaces (``tests/integration/http/test_disconnect_latency``
runs the watcher, under plain hypercorn).
"""

from __future__ import annotations

import statistics

import trio

from flowkit_http import MCPApp

from ..http._raw import messages, raw_request
from ..http.test_disconnect_latency import LIMIT, Trial, make_server, stateless_call
from ._support import flowkit_serving

TRIALS = 10


def _task_names() -> list[str]:
    names: list[str] = []
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        names.append(task.name)
        todo.extend(t for nursery in task.child_nurseries for t in nursery.child_tasks)
    return names


async def test_stateless_disconnect_cancels_at_once_with_no_watcher_task() -> None:
    trials: dict[str, Trial] = {}
    latencies: list[float] = []
    with trio.fail_after(30):
        async with flowkit_serving(MCPApp(make_server(trials))) as base:
            for n in range(TRIALS):
                name = f"t{n}"
                trial = trials[name] = Trial()
                headers, body = stateless_call(name)
                async with raw_request(base, "POST", "/mcp", headers, body) as response:
                    assert response.status == 200
                    events, ended = await response.read(stop=3)  # the pipeline is running
                    assert not ended
                    assert all(m["method"] == "notifications/progress" for m in messages(events))
                    assert not [t for t in _task_names() if t.endswith("_watch")]
                    closed_at = trio.current_time()
                await trial.stopped.wait()
                assert trial.cancelled_at is not None, "the pipeline ended without a cancel"
                latencies.append(trial.cancelled_at - closed_at)
    assert statistics.median(latencies) < LIMIT, latencies
