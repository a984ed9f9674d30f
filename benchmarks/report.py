"""Run the benchmark suite and write docs/benchmarks.md with tables and PNG plots.

    python -m benchmarks.report [--quick | --full] [--out docs/benchmarks.md]

``--quick`` runs every benchmark's quick mode (CI: the suite never rots);
``--full`` (the default) the documented sizes. Each benchmark's printed
table and ratio line go into the page verbatim, with plots (matplotlib) in
``docs/benchmarks/``: throughput and latency vs concurrency, RSS vs open
streams, memory over time for the slow consumer per policy, batching latency.
The page says when, on what machine and with which versions it was taken.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from . import _servers, batching, burst, concurrent, cpu, idle, mcp, pipeline, slow_consumer

ROOT = Path(__file__).resolve().parent.parent

SUITE: list[tuple[str, str, Callable[..., Any]]] = [
    ("pipeline", "Operator throughput vs the naive trio design", pipeline.main),
    ("mcp", "One stream: notifications/s and time to first notification", mcp.main),
    ("concurrent", "Concurrent sessions, 50 notifications 100 ms apart", concurrent.main),
    ("idle", "Idle open tool-call streams", idle.main),
    ("burst", "A burst of sessions: initialize + one cheap call", burst.main),
    ("cpu", "Server CPU per call, per timed event and per start", cpu.main),
    ("slow_consumer", "Slow clients, per delivery policy", slow_consumer.main),
    ("batching", "Adaptive write coalescing on vs off", batching.main),
]

QUICK_PIPELINE = ["--items", "100000", "--naive-items", "20000", "--repeat", "2"]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        kib = int(f.readline().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    versions = ", ".join(
        f"{d} {metadata.version(d)}"
        for d in ("trio", "hypercorn", "quart-trio", "mcp", "uvicorn")
        if _has(d)
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    fastmcp = _servers.FASTMCP.replace("==", " ")  # in its own venv, not this one's metadata
    return (
        f"{cpu}, {os.cpu_count()} CPUs{mem}; {platform.system()} {platform.release()}; "
        f"CPython {platform.python_version()}; {versions}, {fastmcp}; flowkit at {commit or '?'}"
    )


def _has(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def _run(fn: Callable[..., Any], argv: list[str]) -> tuple[str, Any, float]:
    out = io.StringIO()
    t0 = time.monotonic()
    saved = sys.argv
    sys.argv = ["benchmarks", *argv]
    try:
        with contextlib.redirect_stdout(out):
            result = fn(argv) if fn is not pipeline.main else fn()
    finally:
        sys.argv = saved
    text = out.getvalue()
    sys.stdout.write(text)
    sys.stdout.flush()
    return text, result, time.monotonic() - t0


def _plots(results: dict[str, Any], img_dir: Path) -> dict[str, list[str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, list[str]] = {}

    def save(fig: Any, name: str, section: str) -> None:
        fig.tight_layout()
        fig.savefig(img_dir / name, dpi=90)
        plt.close(fig)
        made.setdefault(section, []).append(name)

    conc = results.get("concurrent")
    if conc:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for server in ("flowkit", *_servers.PEERS):
            rows = [o for o in conc if o.server == server]
            cs = [o.sessions for o in rows]
            axes[0].plot(cs, [o.notif_per_s for o in rows], marker="o", label=server)
            axes[1].plot(cs, [o.late_p99_ms for o in rows], marker="o", label=f"{server} p99")
            axes[1].plot(cs, [o.late_p50_ms for o in rows], ls="--", label=f"{server} p50")
            axes[2].plot(cs, [o.peak_rss_mib for o in rows], marker="o", label=server)
        if conc:
            cs = sorted({o.sessions for o in conc})
            axes[0].plot(cs, [10 * c for c in cs], color="grey", ls=":", label="asked (10/s each)")
        axes[0].set(title="delivered notifications/s", xlabel="concurrent sessions")
        axes[1].set(title="lateness vs schedule (ms)", xlabel="concurrent sessions", yscale="log")
        axes[2].set(title="server peak RSS (MiB)", xlabel="concurrent sessions")
        for ax in axes:
            ax.legend(fontsize=7)
        save(fig, "concurrent.png", "concurrent")
    idl = results.get("idle")
    if idl:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for server in ("flowkit", *_servers.PEERS):
            rows = [o for o in idl if o.server == server]
            ax.plot(
                [0] + [o.still_open for o in rows],
                [rows[0].idle_mib] + [o.held_mib for o in rows] if rows else [],
                marker="o",
                label=server,
            )
        ax.set(title="server RSS vs open idle streams", xlabel="open streams", ylabel="MiB")
        ax.legend()
        save(fig, "idle.png", "idle")
    slow = results.get("slow_consumer")
    if slow:
        fig, ax = plt.subplots(figsize=(7, 3.8))
        for o in slow:
            ax.plot(
                [t for t, _ in o.series],
                [kib / 1024 for _, kib in o.series],
                label=f"{o.server} {o.policy} ({o.tool})",
            )
        ax.set(title="server RSS under slow clients", xlabel="seconds", ylabel="MiB")
        ax.legend(fontsize=7)
        save(fig, "slow_consumer.png", "slow_consumer")
    bat = results.get("batching")
    if bat:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        for i, workload in enumerate(sorted({o.workload for o in bat})):
            ax = axes[min(i, 1)]
            for label in ("on", "off"):
                rows = [o for o in bat if o.coalescing == label and o.workload == workload]
                ax.plot(
                    [o.speed for o in rows],
                    [o.lat_p99_ms for o in rows],
                    marker="o",
                    label=f"{label} p99",
                )
                ax.plot(
                    [o.speed for o in rows],
                    [o.lat_p50_ms for o in rows],
                    ls="--",
                    label=f"{label} p50",
                )
            ax.set(title=f"per-event latency, {workload}", ylabel="ms", yscale="log")
            ax.legend(fontsize=7)
        save(fig, "batching.png", "batching")
    return made


def _load(avg: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.2f}" for x in avg)


def _heading(name: str, title: str) -> str:
    return f"## {title} (`python -m benchmarks.{name}`)"


def merge_sections(kept: str, generated: dict[str, list[str]]) -> list[str]:
    """The ``## `` sections of the page: ``generated`` ones replaced, every other one kept.

    A run regenerates the sections of the benchmarks it ran (by heading) in
    place and appends the new ones; sections written by hand (the analyses,
    and benchmarks outside ``SUITE``: stdio, client, redis_store, ...) and
    sections of benchmarks this run skipped (``--only``) stay as they were.
    What precedes the first section (the run's preamble) is not kept.
    """
    parts = kept.split("\n## ")[1:]
    out: list[str] = []
    seen: set[str] = set()
    for part in parts:
        title, _, body = part.partition("\n")
        heading = "## " + title
        if heading in generated:
            out += generated[heading]
            seen.add(heading)
        else:
            out += [f"{heading}\n{body}".rstrip(), ""]
    for heading, section in generated.items():
        if heading not in seen:
            out += section
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--full", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    out = Path(args.out)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()
    texts: dict[str, str] = {}
    results: dict[str, Any] = {}
    took: dict[str, float] = {}
    for name, _title, fn in SUITE:
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        if name == "pipeline":
            argv_ = QUICK_PIPELINE if args.quick else []
            argv_ = [
                *argv_,
                "--memory-sizes",
                "100000,1000000" if args.quick else "100000,1000000,10000000",
            ]
        else:
            argv_ = ["--quick"] if args.quick else []
        texts[name], results[name], took[name] = _run(fn, argv_)
    load_after = os.getloadavg()
    img_dir = out.parent / "benchmarks"
    plots = _plots(results, img_dir)
    lines = [
        "# Benchmarks",
        "",
        "flowkit side by side with the official MCP Python SDK server (`MCPServer` on uvicorn,",
        'as `MCPServer.run("streamable-http")` runs it) and FastMCP 4.x (`FastMCP.run("http")`,',
        "in its own venv under `.cache/fastmcp`), same raw load client",
        "(`benchmarks/_client.py`), same run, every server a subprocess on 127.0.0.1.",
        "Regenerate with `python -m benchmarks.report --full` (CI runs `--quick`): it",
        "rewrites the sections of the benchmarks it runs and keeps every other section.",
        "",
        f"* Taken: {started}, mode `{'quick' if args.quick else 'full'}`.",
        f"* Machine: {_machine()}.",
        "* Client and server share the machine (2 cores: one each, roughly); the client's",
        "  own CPU use is in the tables (`client CPU s/s`).",
        f"* Load average (1, 5, 15 min) before the run: {_load(load_before)}; after: "
        f"{_load(load_after)}. Anything much above 0 before the run means other work"
        " shared the 2 cores: read the figures as a lower bound.",
        "",
    ]
    generated: dict[str, list[str]] = {}
    for name, title, fn in SUITE:
        if name not in texts:
            continue
        doc = (sys.modules[fn.__module__].__doc__ or "").strip()
        section = [_heading(name, title), ""]
        section += [doc.split("\n\n", 1)[1] if "\n\n" in doc else doc, ""]
        section += ["```text", texts[name].rstrip(), "```", ""]
        section += [f"_{took[name]:.0f} s._", ""]
        for png in plots.get(name, []):
            section += [f"![{name}](benchmarks/{png})", ""]
        generated[_heading(name, title)] = section
    kept = out.read_text() if out.exists() else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([*lines, *merge_sections(kept, generated)]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
