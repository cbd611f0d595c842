#!/usr/bin/env bash
# The test command: install the browser tests' Chromium and axe-core, start the servers, run
# the format check, lint, types and every test, then stop the servers whatever the outcome.
# Extra arguments go to pytest.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"

scripts/browser.sh
trap 'scripts/services.sh down' EXIT
scripts/services.sh up
# shellcheck source=/dev/null
source var/services/env

started=$SECONDS
"$BIN/ruff" format --check .
"$BIN/ruff" check .
"$BIN/mypy"
# The slowest tests, so that what makes the command long is seen in every run.
"$BIN/pytest" --durations=25 "$@"
echo "test command: checks and tests took $((SECONDS - started)) s"
