#!/bin/sh
# The official MCP conformance suite against tests/system/conformance/fixture.py, both
# revisions (2025-11-25, 2026-07-28). Installs Node 22 and the pinned
# @modelcontextprotocol/conformance into .cache/node/ on first use (needs npm),
# serves the fixture with `flowkit serve` on a free 127.0.0.1 port, compares
# the failures with tests/system/conformance/expected-failures.txt, stops the server.
# `./dev test` runs the same thing through tests/system/conformance/test_conformance.py.
set -eu
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m tests.system.conformance.suite "$@"
