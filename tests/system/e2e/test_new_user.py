"""A new user's first hour, on the built wheel in a clean venv (issue 16).

The project is built into a wheel (``pip wheel --no-deps``, hatchling) and
installed, with its declared runtime dependencies and the official ``mcp``
client (the dev extra's requirement), with the extras the docs name for their
capabilities (``USER_EXTRAS``), into a venv created for this run: what
``pip install 'flowkit[redis,...]' mcp`` gives a user, and nothing of this checkout (no
editable install, no ``tests``, the examples run from a temporary folder). A
dependency missing from ``pyproject.toml``, a module left out of the wheel or
an example that needs the source tree fails here.

In that venv: every ```python example of README.md and docs/ (the ones
``tests/system/test_docs.py`` runs from the source tree; each starts its own server
where it needs one), ``flowkit --version``, ``flowkit serve --demo`` called by
an SDK client, and ``flowkit serve`` on a module of the user's own, whose
failing tool shows on the console.

Downloads happen once per ``pyproject.toml``: the dependencies' wheels are
kept in ``.cache/e2e/wheels-<hash>/`` and the venv installs from there with
``--no-index``. The venv itself is fresh every run (it must be clean).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import trio

from ...integration.http._flowkit_serve import running, serve_and_stop, stop
from ..test_docs import EXAMPLES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".cache" / "e2e"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


#: The extras the docs tell a user to install for a capability (``flowkit[redis]``
#: for docs/scaling.md...): every extra but the project's own dev and bench sets.
USER_EXTRAS = sorted(set(PYPROJECT["project"]["optional-dependencies"]) - {"dev", "bench"})


def _with_extras(wheel: Path) -> str:
    return f"{wheel}[{','.join(USER_EXTRAS)}]" if USER_EXTRAS else str(wheel)


def _client_requirement() -> str:
    """The official SDK client, as the dev extra pins it (``mcp>=...``)."""
    dev: list[str] = PYPROJECT["project"]["optional-dependencies"]["dev"]
    return next(r for r in dev if r.split(">")[0].split("=")[0].strip() == "mcp")


def _run(command: list[Any], timeout: float, **kw: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kw,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def _wheelhouse(wheel: Path) -> Path:
    """The dependencies' wheels for this pyproject.toml, downloaded once (under a lock)."""
    pinned = (ROOT / "pyproject.toml").read_bytes() + ",".join(USER_EXTRAS).encode()
    key = hashlib.sha256(pinned).hexdigest()[:16]
    house = CACHE / f"wheels-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other checkouts may share .cache
        if not (house / ".complete").exists():
            partial = Path(tempfile.mkdtemp(dir=CACHE, prefix="partial-"))
            pip = [sys.executable, "-m", "pip", "wheel", "-q", "-w", partial]
            _run([*pip, _with_extras(wheel), _client_requirement()], timeout=900)
            for own in partial.glob("flowkit-*.whl"):
                own.unlink()  # the project's wheel is built afresh every run
            (partial / ".complete").touch()
            shutil.rmtree(house, ignore_errors=True)
            partial.rename(house)
        for stale in CACHE.glob("wheels-*"):
            if stale != house:
                shutil.rmtree(stale, ignore_errors=True)
    return house


def _environment(venv: Path) -> dict[str, str]:
    """An activated venv: its bin first on PATH, nothing of this interpreter's paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT], timeout=300)
    (wheel,) = dist.glob("flowkit-*.whl")
    house = _wheelhouse(wheel)
    venv = tmp_path_factory.mktemp("user") / "venv"
    _run([sys.executable, "-m", "venv", venv], timeout=120)
    install = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-index"]
    _run([*install, "--find-links", house, _with_extras(wheel), _client_requirement()], timeout=600)
    return venv


def test_the_wheel_installs_flowkit_and_flowkit_http(venv: Path, tmp_path: Path) -> None:
    probe = (
        "import importlib.util, json, pathlib, flowkit, flowkit_http\n"
        "print(json.dumps({\n"
        "    'flowkit': flowkit.__file__, 'flowkit_http': flowkit_http.__file__,\n"
        "    'adapters': importlib.util.find_spec('adapters') is not None,\n"
        "    'typed': [(pathlib.Path(m.__file__).parent / 'py.typed').exists()\n"
        "              for m in (flowkit, flowkit_http)],\n"
        "}))\n"
    )
    done = _run([venv / "bin" / "python", "-c", probe], 60, cwd=tmp_path, env=_environment(venv))
    found = json.loads(done.stdout)
    site = venv / "lib"
    assert Path(found["flowkit"]).is_relative_to(site), found
    assert Path(found["flowkit_http"]).is_relative_to(site), found
    assert found["adapters"] is False  # adapters/ is a source folder, not a package
    assert found["typed"] == [True, True]


def test_flowkit_version(venv: Path) -> None:
    done = _run([venv / "bin" / "flowkit", "--version"], 60, env=_environment(venv))
    assert done.stdout == f"flowkit {PYPROJECT['project']['version']}\n"


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_example_runs_from_the_installed_wheel(
    venv: Path, where: str, code: str, tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [venv / "bin" / "python", script],
        cwd=tmp_path,
        env=_environment(venv),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"


# A user's client script: call one tool with the official SDK, print what came back.
_CLIENT = """
import asyncio, json, sys

from mcp import Client


async def main(url: str, tool: str, arguments: dict) -> None:
    progress = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(url) as client:
        result = await client.call_tool(tool, arguments, progress_callback=on_progress)
    print(json.dumps({
        "error": result.is_error,
        "structured": result.structured_content,
        "progress": progress,
    }))


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
"""

_USER_TOOLS = '''
from collections.abc import AsyncIterator

import flowkit
from flowkit_http import MCPServer, Progress, Result, ToolPipeline

server = MCPServer(name="my-tools")


@server.tool
def squares(n: int) -> ToolPipeline:
    """Squares of 1..n through a flowkit pipeline."""
    return ToolPipeline(range(1, n + 1), flowkit.map(lambda x: x * x), total=n)


@server.tool
async def pages(count: int) -> AsyncIterator[Progress | Result]:
    """Render `count` pages."""
    for page in range(1, count + 1):
        yield Progress(f"page {page}", total=count)
    yield Result(structured={"pages": count})


@server.tool
async def broken() -> str:
    """Always fails."""
    raise ConnectionError("the upstream API is down")
'''


async def _call(venv: Path, cwd: Path, url: str, tool: str, arguments: dict[str, Any]) -> Any:
    (cwd / "client.py").write_text(_CLIENT)
    done = await trio.run_process(
        [venv / "bin" / "python", "client.py", url, tool, json.dumps(arguments)],
        cwd=cwd,
        env=_environment(venv),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


async def test_flowkit_serve_demo(venv: Path, tmp_path: Path) -> None:
    flowkit = [str(venv / "bin" / "flowkit")]
    with trio.fail_after(60):
        outcome = await serve_and_stop(["--demo"], tmp_path, command=flowkit)
        assert outcome == {
            "tools": ["ticker", "analyze_document", "sensor_feed", "sensor_windows"],
            "resources": ["sensor://demo/room"],
            "resourceTemplates": [],
            "prompts": ["room_report"],
            "code": 0,
            "one more session": 200,
        }
        async with running(["--demo", "--port", "0"], tmp_path, command=flowkit) as (
            process,
            output,
        ):
            url = output.decode().split("serving MCP at ")[1].split()[0]
            called = await _call(venv, tmp_path, url, "ticker", {"count": 4})
            assert await stop(process, output) == 0
    assert called == {"error": False, "structured": {"count": 4}, "progress": [1, 2, 3, 4]}


async def test_flowkit_serve_a_users_own_module(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "my_tools.py").write_text(_USER_TOOLS)
    flowkit = [str(venv / "bin" / "flowkit")]
    with trio.fail_after(60):
        async with running(["my_tools:server", "--port", "0"], tmp_path, command=flowkit) as (
            process,
            output,
        ):
            url = output.decode().split("serving MCP at ")[1].split()[0]
            squares = await _call(venv, tmp_path, url, "squares", {"n": 5})
            pages = await _call(venv, tmp_path, url, "pages", {"count": 3})
            broken = await _call(venv, tmp_path, url, "broken", {})
            assert await stop(process, output) == 0
    assert squares == {"error": False, "structured": {"items": 5}, "progress": [1, 2, 3, 4, 5]}
    assert pages == {"error": False, "structured": {"pages": 3}, "progress": [1, 2, 3]}
    assert broken["error"] is True
    console = output.decode()
    assert "ERROR flowkit_http: tool 'broken' failed: ConnectionError" in console
    assert 'raise ConnectionError("the upstream API is down")' in console
