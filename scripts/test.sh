#!/usr/bin/env bash
# Set up a virtual environment and run the whole test suite: lint, types, tests.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
bash .ci/install-system.sh    # Debian packages some tests use (faketime, podman, prometheus...)
bash .ci/install-servers.sh   # storage servers the tests start on 127.0.0.1
export PATH="$PWD/.venv/bin:$PWD/.servers/node_modules/.bin:$PATH"
echo "== ruff"
ruff check src tests tools benchmarks
ruff format --check src tests tools benchmarks
echo "== mypy"
mypy
echo "== pytest"
df -h . "${TMPDIR:-/tmp}" | sed 's/^/disk: /'  # servers turn read-only on a nearly full disk
python -m pytest "$@"
