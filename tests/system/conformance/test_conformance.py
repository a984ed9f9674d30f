"""The official MCP conformance suite, run against the fixture server.

Part of the default test run (CI runs ``./dev test``): the first run installs
Node 22 and the pinned suite into ``.cache/node/`` (see ``suite.py``), later
runs reuse them; the two suite runs themselves take a few seconds. Every
scenario must pass except those in ``expected-failures.txt``, every listed
one must still fail (so the list cannot rot), and the list may name only
features flowkit does not have.
"""

from __future__ import annotations

import pytest

from . import suite

pytestmark = pytest.mark.slow

# Scenarios the issue names explicitly: they must run (and, as every scenario
# not listed, pass).
MUST_RUN = {
    "2025-11-25": {
        "server-initialize",
        "server-session-lifecycle",
        "server-sse-multiple-streams",
        "server-sse-polling",
        "dns-rebinding-protection",
        "tools-call-with-progress",
        "tools-call-with-logging",
    },
    "2026-07-28": {
        "server-stateless",
        "server-sse-multiple-streams",
        "dns-rebinding-protection",
        "caching",
        "http-header-validation",
        "http-custom-header-server-validation",
        "tools-call-with-progress",
    },
}


# Scenarios that pass vacuously when the fixture lacks what they exercise
# (server-sse-polling reports 0 checks without test_reconnection): each must
# pass at least this many checks, with no warnings.
MUST_CHECK = {
    "2025-11-25": {"server-sse-polling": 3},  # priming event, retry field, disconnect-resume
}


@pytest.fixture(scope="module")
def runs() -> dict[str, suite.RevisionRun]:
    # Bounded: npm install (600 s, first run only), server start-up (30 s) and
    # each suite run (420 s) have their own timeouts in suite.py.
    return suite.run_all()


@pytest.fixture(scope="module")
def expected() -> list[suite.Expectation]:
    return suite.load_expected()


def test_expected_failures_name_only_missing_features(expected: list[suite.Expectation]) -> None:
    assert expected, "the list is empty: did the parser break?"
    for entry in expected:
        assert entry.revision in suite.REVISIONS, entry
        assert entry.family in suite.FAMILIES, (
            f"{entry.entry}: {entry.family} is not a missing feature"
        )
        assert suite.FAMILIES[entry.family].search(entry.entry), (
            f"{entry.entry} does not look like a {entry.family} scenario or check"
        )
        assert entry.reason.strip(), entry


@pytest.mark.parametrize("revision", suite.REVISIONS)
def test_conformance(
    revision: str,
    runs: dict[str, suite.RevisionRun],
    expected: list[suite.Expectation],
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = runs[revision]
    with capsys.disabled():
        print("\n" + suite.summary(run, expected))
    assert run.scenarios, f"no scenario results parsed; suite output:\n{run.output[-3000:]}"
    missing = MUST_RUN[revision] - set(run.scenarios)
    assert not missing, f"scenarios did not run: {sorted(missing)}"
    for name, least in MUST_CHECK.get(revision, {}).items():
        scenario = run.scenarios[name]
        assert scenario.passed >= least, f"{name}: only {scenario.passed} checks passed"
        assert not scenario.warning_checks, f"{name} warned: {scenario.warning_checks}"
    problems = suite.compare(run, expected)
    assert not problems, "\n".join(problems)
