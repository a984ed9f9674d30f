"""Run the official MCP conformance suite against the fixture server.

``python -m tests.system.conformance.suite`` (or ``.ci/conformance.sh``) from the
repository root:

1. installs, once, into ``.cache/node/`` (gitignored) Node >= 22 from the npm
   registry (the ``node`` package carries the platform binary; the system
   Node 20 crashes the suite) and the pinned ``@modelcontextprotocol/conformance``,
   using the system ``npm`` (installed with apt if it is missing);
2. starts ``flowkit serve tests.system.conformance.fixture:app`` on a free port of
   127.0.0.1 and waits until it answers;
3. runs ``conformance server --url … --requirements <revision>`` for each
   revision, with the Node 22 binary;
4. compares the failures with ``expected-failures.txt`` and stops the server
   by its PID.

It exits 0 when every scenario passes except the listed ones, and each
listed one still fails. ``test_conformance.py`` runs it under pytest, so the
project's test command (``./dev test``) runs the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs

__all__ = [
    "CONFORMANCE_VERSION",
    "FAMILIES",
    "NODE_VERSION",
    "REVISIONS",
    "Expectation",
    "RevisionRun",
    "Scenario",
    "compare",
    "ensure_installed",
    "load_expected",
    "run_all",
]

ROOT = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("FLOWKIT_NODE_CACHE", ROOT / ".cache" / "node"))
EXPECTED_FAILURES = Path(__file__).with_name("expected-failures.txt")

NODE_VERSION = "22.23.3"
"""The ``node`` npm package (Node.js binary for this platform) we install."""
CONFORMANCE_VERSION = "0.2.0-alpha.12"
"""The pinned ``@modelcontextprotocol/conformance`` release (verified here)."""
REVISIONS = ("2025-11-25", "2026-07-28")

FAMILIES: dict[str, re.Pattern[str]] = {
    # Feature families flowkit does not implement, and what the scenario or
    # check id of an expected failure in each must mention.
    "resources": re.compile(r"resource"),
    "prompts": re.compile(r"prompt"),
    "completion": re.compile(r"complet"),
    "sampling": re.compile(r"sampling"),
    "elicitation": re.compile(r"elicitation"),
    "input-required": re.compile(r"input-required|mrtr"),
    "tasks": re.compile(r"^tasks-"),
}
"""The only reasons a scenario may be an expected failure."""

SERVER_START_TIMEOUT = 30.0
SUITE_TIMEOUT = 420.0  # per revision; a full run takes well under a minute here


# -- install -------------------------------------------------------------------------------


def node_binary() -> Path:
    return CACHE / "node_modules" / "node" / "bin" / "node"


def suite_entry() -> Path:
    return CACHE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


def _installed_versions() -> tuple[str | None, str | None]:
    node: str | None = None
    try:
        out = subprocess.run(
            [str(node_binary()), "--version"], capture_output=True, text=True, timeout=30
        )
        if out.returncode == 0:
            node = out.stdout.strip().lstrip("v")
    except (OSError, subprocess.TimeoutExpired):
        pass
    package = suite_entry().parents[1] / "package.json"
    suite = json.loads(package.read_text())["version"] if package.exists() else None
    return node, suite


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is not None:
        return npm
    # npm ships with the Debian nodejs/npm packages; we only need it to fetch
    # Node 22 and the suite from the registry.
    if shutil.which("apt-get") is not None and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "npm"], check=True, env=env)
        npm = shutil.which("npm")
        if npm is not None:
            return npm
    raise RuntimeError("npm is needed to install Node 22 and the conformance suite")


def ensure_installed(log: bool = True) -> None:
    """Install Node and the pinned suite into ``CACHE``, unless already there."""
    node, suite = _installed_versions()
    if node == NODE_VERSION and suite == CONFORMANCE_VERSION:
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "flowkit-conformance-tools",
        "private": True,
        "description": "Node 22 and the MCP conformance suite for flowkit's test command",
        "dependencies": {
            "node": NODE_VERSION,
            "@modelcontextprotocol/conformance": CONFORMANCE_VERSION,
        },
    }
    (CACHE / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if log:
        print(f"conformance: installing node@{NODE_VERSION} and the suite into {CACHE}", flush=True)
    subprocess.run(
        [_npm(), "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=CACHE,
        check=True,
        timeout=600,
    )
    node, suite = _installed_versions()
    if node != NODE_VERSION:
        # The node package fetches its platform binary in a preinstall script;
        # if the npm in use skipped install scripts, run that step ourselves.
        installer = CACHE / "node_modules" / "node" / "installArchSpecificPackage.js"
        system_node = shutil.which("node") or shutil.which("nodejs")
        if installer.exists() and system_node is not None:
            subprocess.run([system_node, installer.name], cwd=installer.parent, check=True)
        node, suite = _installed_versions()
    if node != NODE_VERSION or suite != CONFORMANCE_VERSION:
        raise RuntimeError(f"install failed: node {node!r}, conformance {suite!r}")


# -- the fixture server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _flowkit_command() -> list[str]:
    script = Path(sys.executable).with_name("flowkit")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "flowkit_http"]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)  # GET without a session: 4xx
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextmanager
def fixture_server(log_path: Path) -> Iterator[str]:
    """Run the fixture under ``flowkit serve``; yields its MCP URL; stops it by PID."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    command = [*_flowkit_command(), "serve", "tests.system.conformance.fixture:app"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while not _answers(url):
                if process.poll() is not None:
                    raise RuntimeError(f"the fixture server exited; see {log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the fixture server did not answer; see {log_path}")
                time.sleep(0.1)
            yield url
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()


# -- results ----------------------------------------------------------------------------------


@attrs.frozen
class Scenario:
    """One scenario's outcome: checks that failed and checks that warned."""

    name: str
    passed: int
    failed: int
    failing_checks: tuple[str, ...] = ()
    warning_checks: tuple[str, ...] = ()


@attrs.frozen
class RevisionRun:
    revision: str
    scenarios: dict[str, Scenario]
    output: str
    exit_code: int

    @property
    def passing(self) -> list[str]:
        return [s.name for s in self.scenarios.values() if s.failed == 0]

    @property
    def failing(self) -> list[str]:
        return [s.name for s in self.scenarios.values() if s.failed]


_SUMMARY = re.compile(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed$", re.MULTILINE)
_RESULT_DIR = re.compile(r"^server-(.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$")


def _parse(revision: str, output: str, results: Path, exit_code: int) -> RevisionRun:
    summary = output[output.rfind("=== SUMMARY ===") :]
    checks: dict[str, list[dict[str, object]]] = {}
    for directory in results.iterdir() if results.exists() else ():
        match = _RESULT_DIR.match(directory.name)
        if match and (directory / "checks.json").exists():
            checks[match.group(1)] = json.loads((directory / "checks.json").read_text())
    scenarios: dict[str, Scenario] = {}
    for name, passed, failed in _SUMMARY.findall(summary):
        own = checks.get(name, [])
        scenarios[name] = Scenario(
            name,
            int(passed),
            int(failed),
            tuple(sorted({str(c["id"]) for c in own if c.get("status") == "FAILURE"})),
            tuple(sorted({str(c["id"]) for c in own if c.get("status") == "WARNING"})),
        )
    return RevisionRun(revision, scenarios, output, exit_code)


def run_revision(url: str, revision: str, out_dir: Path) -> RevisionRun:
    results = out_dir / revision
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    command = [str(node_binary()), str(suite_entry()), "server", "--url", url]
    command += ["--requirements", revision, "--output-dir", str(results)]
    done = subprocess.run(
        command,
        cwd=out_dir,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
        env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
    )
    output = done.stdout + done.stderr
    (out_dir / f"{revision}.log").write_text(output)
    return _parse(revision, output, results, done.returncode)


def run_all(revisions: Sequence[str] = REVISIONS) -> dict[str, RevisionRun]:
    """Install if needed, serve the fixture, run the suite for each revision."""
    ensure_installed()
    out_dir = ROOT / ".cache" / "conformance"
    out_dir.mkdir(parents=True, exist_ok=True)
    with fixture_server(out_dir / "server.log") as url:
        return {revision: run_revision(url, revision, out_dir) for revision in revisions}


# -- expected failures -------------------------------------------------------------------------


@attrs.frozen
class Expectation:
    """One line of ``expected-failures.txt``.

    ``check`` is ``None`` when the whole scenario is expected to fail; else
    only that check of it is (the rest of the scenario must pass).
    """

    revision: str
    scenario: str
    check: str | None
    family: str
    reason: str

    @property
    def entry(self) -> str:
        return self.scenario if self.check is None else f"{self.scenario}:{self.check}"


def load_expected(path: Path = EXPECTED_FAILURES) -> list[Expectation]:
    """Parse ``revision  scenario[:check]  family  reason...`` lines (``#`` comments)."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split(None, 3)
        if len(fields) != 4:
            raise ValueError(f"{path.name}:{number}: need revision, entry, family and reason")
        revision, entry, family, reason = fields
        scenario, _, check = entry.partition(":")
        entries.append(Expectation(revision, scenario, check or None, family, reason))
    return entries


def compare(run: RevisionRun, expected: Sequence[Expectation]) -> list[str]:
    """Problems with a run given the expectations: empty means as expected."""
    problems = []
    mine = [e for e in expected if e.revision == run.revision]
    whole = {e.scenario for e in mine if e.check is None}
    partial: dict[str, set[str]] = {}
    for e in mine:
        if e.check is not None:
            partial.setdefault(e.scenario, set()).add(e.check)
    for e in mine:
        scenario = run.scenarios.get(e.scenario)
        if scenario is None:
            problems.append(f"{e.entry}: expected to fail but the scenario did not run")
        elif (e.check is None and not scenario.failed) or (
            e.check is not None and e.check not in scenario.failing_checks
        ):
            problems.append(f"{e.entry}: passes now; remove it from the expected failures")
    for scenario in run.scenarios.values():
        if not scenario.failed or scenario.name in whole:
            continue
        unexpected = set(scenario.failing_checks) - partial.get(scenario.name, set())
        if unexpected or not scenario.failing_checks:
            checks = ", ".join(sorted(unexpected)) or "(no checks.json)"
            problems.append(f"{scenario.name}: fails unexpectedly: {checks}")
    return problems


def summary(run: RevisionRun, expected: Sequence[Expectation]) -> str:
    mine = [e for e in expected if e.revision == run.revision]
    listed = {e.scenario for e in mine}
    fully = [s for s in run.passing]
    lines = [
        f"MCP conformance {run.revision} (@modelcontextprotocol/conformance@{CONFORMANCE_VERSION}):"
        f" {len(fully)}/{len(run.scenarios)} scenarios pass,"
        f" {len(run.failing)} fail ({len(listed)} listed as expected failures)"
    ]
    for name in sorted(run.scenarios):
        s = run.scenarios[name]
        mark = "PASS" if not s.failed else ("xfail" if name in listed else "FAIL")
        extra = f"  failing: {', '.join(s.failing_checks)}" if s.failed else ""
        warn = f"  warnings: {', '.join(s.warning_checks)}" if s.warning_checks else ""
        lines.append(f"  {mark:5} {name} ({s.passed} passed, {s.failed} failed){extra}{warn}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--revision", action="append", choices=REVISIONS)
    args = parser.parse_args(argv)
    expected = load_expected()
    runs = run_all(args.revision or REVISIONS)
    status = 0
    for run in runs.values():
        print(summary(run, expected))
        problems = compare(run, expected)
        for problem in problems:
            print(f"  PROBLEM {problem}")
        status |= bool(problems)
    return status


if __name__ == "__main__":
    sys.exit(main())
