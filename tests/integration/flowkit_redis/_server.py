"""A real redis-server on 127.0.0.1 (a free port), persistence off, stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

# What every ``flowkit serve --redis`` / ``--workers 2`` process of the tests
# gets: the same request-state key (the CLI refuses to share state without one).
REQUEST_STATE_KEYS = {"FLOWKIT_REQUEST_STATE_KEYS": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process that a test can kill, restart, pause and resume.

    The port stays the same across restarts (clients reconnect to it).
    ``--save "" --appendonly no``: nothing is persisted, so a restart is an
    empty Redis, the harshest case for the store.
    """

    def __init__(self, binary: str, workdir: Path, *, password: str | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.extra: list[str] = []  # more redis-server arguments (cluster mode)

    @property
    def url(self) -> str:
        credentials = f"default:{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_ready(self.process)
        except BaseException:
            self.stop()  # never left running (nor unreaped) by a start that failed
            raise

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 10
        while True:  # ready once it accepts connections (bounded, not a timing guess)
            if process.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited ({process.returncode}): {log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self) -> None:
        """SIGKILL by PID (an abrupt death, as in a crash) and reap."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:  # not if reaped: a PID reused
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: Redis holds its connections but answers nothing (slow / hung)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


def free_cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


class RedisClusterServers:
    """Three masters, no replicas, on 127.0.0.1: a Redis Cluster the test starts itself.

    Each node is a :class:`RedisServer` with cluster mode on; ``redis-cli
    --cluster create`` assigns the 16384 slots; ready once every node reports
    ``cluster_state:ok``.
    """

    def __init__(self, binary: str, workdir: Path, masters: int = 3) -> None:
        self.nodes: list[RedisServer] = []
        for index in range(masters):
            node_dir = workdir / f"node{index}"
            node_dir.mkdir()
            node = RedisServer(binary, node_dir)
            node.port = free_cluster_port()
            node.extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
            ]
            self.nodes.append(node)
        self.cli = str(Path(binary).with_name("redis-cli"))

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        deadline = time.monotonic() + 20
        for node in self.nodes:
            while True:  # slots are gossiped: wait (bounded) until each node agrees
                info = subprocess.run(
                    [self.cli, "-p", str(node.port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=True,
                ).stdout
                if "cluster_state:ok" in info:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster did not become ok: {info}")
                time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
