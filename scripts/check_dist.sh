#!/usr/bin/env bash
# Check built distributions as a user receives them: the wheel installs into a clean venv,
# reports the expected version, names no pip target but gemini-batch-reconciler (`reconciler`
# on the package index is another project), and `reconciler init` + `apply --wait` work against
# the embedded emulator.
#
# Usage: scripts/check_dist.sh DIST_DIR [EXPECTED_VERSION]
set -euo pipefail
dist="$(cd "$1" && pwd)"
expected="${2:-}"
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
wheels=("$dist"/*.whl)
[ -f "${wheels[0]}" ] || { echo "check_dist: no wheel in $dist" >&2; exit 1; }

"$PYTHON" - "${wheels[@]}" <<'PY'
import re, sys, zipfile
taken = re.compile(r"(?<![\w.-])(?:(?:pipx?|uv tool|uv pip) install\s+['\"]?reconciler\b(?!-)|reconciler(?:\[[\w,]+\]|==))")
for wheel in sys.argv[1:]:
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
        assert re.search(r"^Name: gemini-batch-reconciler$", text, re.M), "wrong distribution name"
        for name in archive.namelist():
            body = archive.read(name).decode("utf-8", "replace")
            hit = taken.search(body)
            assert hit is None, f"{wheel}:{name} names the taken distribution: {hit.group(0)!r}"
print("check_dist: metadata and contents name gemini-batch-reconciler only")
PY

"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -qq "${wheels[0]}"
version="$("$work/venv/bin/reconciler" --version)"
echo "check_dist: $version"
if [ -n "$expected" ] && [ "$version" != "reconciler, version $expected" ]; then
  echo "check_dist: expected version $expected" >&2
  exit 1
fi
mkdir "$work/project"
cd "$work/project"
env -u RECONCILER_ENDPOINT -u RECONCILER_STATE -u RECONCILER_PROJECT_DIR \
  "$work/venv/bin/reconciler" init
env -u RECONCILER_ENDPOINT -u RECONCILER_STATE -u RECONCILER_PROJECT_DIR \
  "$work/venv/bin/reconciler" apply --auto-approve --wait --timeout 2m
test -s results/questions.jsonl
echo "check_dist: init and apply --wait work from the wheel"
