"""``flowkit serve --workers N``: N processes serving one port, so every core is used.

The parent binds the listening socket once (so ``--port 0`` means one free
port for all, and a port in use is one error, before any worker starts),
then starts N workers, each ``python -m flowkit_http serve`` with the same
arguments and the socket's descriptor inherited (``pass_fds``); each serves
it with flowkit's own accept loop (``_serve.py``) as hypercorn's
``fd://N`` bind. Why a shared descriptor and not ``SO_REUSEPORT`` (one
socket per worker):

* the accept loop takes a connection when its worker's event loop gets to
  it, so a busy worker accepts less and an idle one more: the balance
  follows load. ``SO_REUSEPORT`` hashes connections to sockets, whatever
  their worker's load, and the connections queued on a worker that dies are
  reset with it;
* port 0 and a port in use are decided once, in the parent.

Both workers wake for each connection and one gets ``EAGAIN`` (the loop
already skips it): a few microseconds per connection, not per event.

Supervision: SIGINT/SIGTERM to the parent is forwarded as SIGTERM to every
worker by PID; each shuts down gracefully (``--graceful-timeout``), and the
parent exits 0 once all have, or kills what is left after the graceful
timeout plus :data:`MARGIN` and exits 1. A worker that exits on its own is
not restarted: the parent logs one line, stops the others the same way and
exits 1, so the process supervisor (systemd, Kubernetes) restarts the whole
server and sees the failure, instead of a server that restarts a crashing
worker in a loop. A worker whose parent is gone (killed with SIGKILL, so
nothing was forwarded) shuts itself down the same graceful way
(:func:`watch_parent`).

Each worker prints its start-up lines to the parent through a pipe, ending
with :data:`READY`; the parent prints each distinct line once (the MCP URL
once, every worker's own metrics address), then ``flowkit: N workers
(pids ...)``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence

import attrs
import trio

__all__ = ["MARGIN", "READY", "Worker", "supervise", "watch_parent", "worker_role"]

logger = logging.getLogger("flowkit_http")

WORKER_ENV = "FLOWKIT_SERVE_WORKER"
"""``INDEX,FD`` in a worker's environment: its number and the listening socket."""
READY = "flowkit: worker ready"
"""The last start-up line a worker prints."""
MARGIN = 5.0
"""Seconds beyond ``--graceful-timeout`` the parent waits for workers to exit."""
PARENT_CHECK = 1.0
"""Seconds between a worker's checks that its parent still runs."""


@attrs.frozen
class Worker:
    """What a worker process is told by its parent: its number, the socket's descriptor."""

    index: int
    fd: int
    parent: int = attrs.field(factory=os.getppid)


def worker_role() -> Worker | None:
    """This process's role when the parent started it as a worker, else ``None``."""
    value = os.environ.get(WORKER_ENV)
    if not value:
        return None
    index, _, fd = value.partition(",")
    return Worker(int(index), int(fd))


async def _start(index: int, argv: Sequence[str], sock: socket.socket) -> trio.Process:
    env = {**os.environ, WORKER_ENV: f"{index},{sock.fileno()}"}
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "flowkit_http", *argv],
        stdout=subprocess.PIPE,
        pass_fds=(sock.fileno(),),
        env=env,
    )


@attrs.define
class _Child:
    """One worker as the parent sees it: its process and its start-up lines."""

    index: int
    proc: trio.Process
    lines: list[str] = attrs.Factory(list)
    ready: trio.Event = attrs.Factory(trio.Event)

    async def read(self) -> None:
        """Collect the start-up lines up to :data:`READY`, then pass the rest on."""
        assert self.proc.stdout is not None
        buffer = b""
        async for chunk in self.proc.stdout:
            *lines, buffer = (buffer + chunk).split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                if self.ready.is_set():
                    print(line, flush=True)
                elif line == READY:
                    self.ready.set()
                else:
                    self.lines.append(line)


async def _supervise(argv: Sequence[str], sock: socket.socket, count: int, grace: float) -> int:
    failed: list[str] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        children = [_Child(i, await _start(i, argv, sock)) for i in range(count)]
        sock.close()  # the workers hold it now
        stopping = trio.Event()

        def stop() -> None:
            if not stopping.is_set():
                stopping.set()
                for child in children:
                    if child.proc.returncode is None:
                        child.proc.send_signal(signal.SIGTERM)

        async def on_signal() -> None:
            async for signum in signals:
                logger.info("%s: stopping %d workers", signal.Signals(signum).name, count)
                stop()
                return

        async def watch(child: _Child) -> None:
            async with trio.open_nursery() as reading:
                reading.start_soon(child.read)
                status = await child.proc.wait()
            if not stopping.is_set():
                when = "" if child.ready.is_set() else " before serving"
                failed.append(
                    f"worker {child.index} (pid {child.proc.pid}) exited{when} with status {status}"
                )
                logger.error("%s: stopping the server", failed[-1])
                stop()

        async def announce() -> None:
            for child in children:
                await child.ready.wait()
            shown: set[str] = set()
            for child in children:
                for line in child.lines:
                    if line not in shown:
                        shown.add(line)
                        print(line, flush=True)
            pids = ", ".join(str(child.proc.pid) for child in children)
            print(f"flowkit: {count} workers (pids {pids})", flush=True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(on_signal)
            for child in children:
                nursery.start_soon(watch, child)
            nursery.start_soon(announce)
            await stopping.wait()
            with trio.move_on_after(grace + MARGIN):
                for child in children:
                    await child.proc.wait()
            left = [child.proc for child in children if child.proc.returncode is None]
            if left:
                failed.append(f"{len(left)} worker(s) still running after {grace + MARGIN:g} s")
                for proc in left:
                    proc.kill()
                    await proc.wait()
            nursery.cancel_scope.cancel()
    if failed:
        print(f"flowkit serve: error: {failed[0]}", file=sys.stderr, flush=True)
        return 1
    # A worker killed by the forwarded SIGTERM before its handler was set up
    # (a signal during start-up) was still stopped as asked.
    stopped = (0, -signal.SIGTERM)
    return 0 if all(child.proc.returncode in stopped for child in children) else 1


async def watch_parent(worker: Worker, stopping: trio.Event) -> None:
    """Until ``stopping``: shut this worker down if its parent is gone (SIGKILL).

    Nothing else would stop it: it would go on serving the port, unsupervised,
    after its server was killed.
    """
    while os.getppid() == worker.parent:
        with trio.move_on_after(PARENT_CHECK):
            await stopping.wait()
            return
    logger.error(
        "worker %d: the parent (pid %d) is gone: shutting down", worker.index, worker.parent
    )
    os.kill(os.getpid(), signal.SIGTERM)  # the graceful path, as if forwarded


def supervise(argv: Sequence[str], sock: socket.socket, count: int, grace: float) -> int:
    """Run ``count`` workers on the bound ``sock`` until a signal; the exit status.

    Args:
        argv: the ``flowkit`` arguments the workers run with (``serve ...``).
        sock: the listening socket, bound and listening.
        count: how many workers.
        grace: ``--graceful-timeout``: each worker's own shutdown budget.
    """
    os.set_inheritable(sock.fileno(), True)
    return trio.run(_supervise, argv, sock, count, grace)
