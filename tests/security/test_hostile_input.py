"""Hostile input never crashes and never ends in a traceback: every case from the attack on the
landed tool, through the CLI in a subprocess (a SIGSEGV would show as a negative return code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.manifests.scratch import SCRATCH_DIR
from reconciler.state.codec import decode, encode, self_contained
from reconciler.state.document import JobAttempt, ResourceRecord, State

from .conftest import run_cli

pytestmark = pytest.mark.hostile_input

MANIFEST = (
    "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: a\n  labels:\n    x: {label}\n"
    "spec:\n  model: gemini-2.5-flash\n  source:\n    file: data/a.jsonl\n  output: results/a.jsonl\n"
)
GOOD_LINE = '{"key":"k1","request":{"contents":[{"parts":[{"text":"hi"}]}]}}\n'


def _project(tmp_path: Path, label: str = "ok", jsonl: str = GOOD_LINE) -> Path:
    root = tmp_path / "repo"
    (root / "manifests").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "reconciler.yaml").write_text("endpoint: emulator\n")
    (root / "manifests" / "a.yaml").write_text(MANIFEST.format(label=label))
    (root / "data" / "a.jsonl").write_text(jsonl)
    return root


def _assert_refused_cleanly(result: subprocess.CompletedProcess[str], where: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr[-500:])
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr
    assert where in result.stderr, result.stderr[-500:]


@pytest.mark.parametrize("depth", [900, 30_000])
def test_deep_flow_yaml_label_is_refused_with_its_location(tmp_path: Path, depth: int) -> None:
    root = _project(tmp_path, label="[" * depth + "]" * depth)
    for command in ("validate", "plan"):
        _assert_refused_cleanly(run_cli(root, command), "manifests/a.yaml:6:")


def test_deep_block_yaml_is_refused_with_its_location(tmp_path: Path) -> None:
    root = _project(tmp_path)
    deep = "".join(" " * (2 * i) + "x:\n" for i in range(3_000))
    (root / "manifests" / "a.yaml").write_text(MANIFEST.format(label="ok") + "extra:\n" + deep)
    _assert_refused_cleanly(run_cli(root, "validate"), "manifests/a.yaml:")


def test_huge_yaml_integer_is_refused_with_its_location(tmp_path: Path) -> None:
    root = _project(tmp_path, label="9" * 5_000)
    result = run_cli(root, "validate")
    _assert_refused_cleanly(result, "manifests/a.yaml:6:8")
    assert "quote it" in result.stderr


def test_project_file_nested_deep_is_a_config_error(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "reconciler.yaml").write_text("endpoint: " + "[" * 30_000 + "]" * 30_000 + "\n")
    _assert_refused_cleanly(run_cli(root, "validate"), "reconciler.yaml:1:")


@pytest.mark.parametrize(
    "line",
    [
        '{"key":"k2","request":' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"key":"k2","request":{"contents":[{"parts":[{"text":' + "9" * 5_000 + "}]}]}}",
    ],
    ids=["deep-100k", "5000-digit-int"],
)
def test_hostile_jsonl_line_is_a_located_diagnostic(tmp_path: Path, line: str) -> None:
    root = _project(tmp_path, jsonl=GOOD_LINE + line + "\n")
    for command in ("validate", "plan"):
        _assert_refused_cleanly(run_cli(root, command), "data/a.jsonl:2:")


def test_jsonl_nested_just_under_the_decoders_limit_plans_without_a_traceback(
    tmp_path: Path,
) -> None:
    line = (
        '{"key":"k2","request":{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":'
        '{"responseSchema":' + "[" * 900 + "]" * 900 + "}}}"
    )
    root = _project(tmp_path, jsonl=GOOD_LINE + line + "\n")
    for command in ("validate", "plan"):
        result = run_cli(root, command)
        assert result.returncode in (0, 1), result.stderr[-500:]
        assert "Traceback" not in result.stderr and "Internal error" not in result.stderr


@pytest.mark.parametrize(
    "document",
    ["9" * 5_000, '{"format_version": ' + "9" * 5_000 + "}", "[" * 100_000 + "]" * 100_000],
    ids=["bare-int", "int-field", "deep"],
)
def test_hostile_state_file_is_a_state_error(tmp_path: Path, document: str) -> None:
    root = _project(tmp_path)
    (root / "state").mkdir()
    (root / "state" / "reconciler.state.json").write_text(document)
    result = run_cli(root, "state", "list")
    _assert_refused_cleanly(result, "corrupt")


def _state(**records: ResourceRecord) -> State:
    return State(lineage="l", serial=1, resources=records)


def _record(name: str, *jobs: str) -> ResourceRecord:
    attempts = tuple(
        JobAttempt(
            number=i + 1, job_name=job, tag=f"t{i}", spec_hash="h", intent_at=datetime.now(UTC)
        )
        for i, job in enumerate(jobs)
    )
    return ResourceRecord(name=name, spec_hash="h", attempts=attempts)


def test_state_record_filed_under_another_name_is_refused() -> None:
    data = encode(_state(a=_record("b")))
    with pytest.raises(StateError, match="record `a` names itself `b`"):
        decode(data, source="state.json")


def test_two_records_claiming_one_job_are_refused() -> None:
    # Self-contained (details spelled out, as `state pull` prints): no blob store needed.
    data = self_contained(_state(a=_record("a", "batches/1"), b=_record("b", "batches/1")))
    with pytest.raises(StateError, match="record `b` claims job batches/1, which record `a`"):
        decode(data, source="state.json")


def test_a_resource_written_twice_in_the_state_file_is_refused_not_silently_dropped() -> None:
    """A git merge of two branches that each added a record can leave the same name twice: one
    of them must not vanish on the next read (and then from the file on the next write)."""
    data = encode(_state(a=_record("a", "batches/1"), b=_record("b", "batches/2"))).decode()
    (line_a,) = [line for line in data.splitlines(keepends=True) if '"a": {' in line]
    twice = data.replace(line_a, line_a + line_a.replace("batches/1", "batches/3"))
    assert twice.count('"a": {') == 2
    with pytest.raises(StateError, match=r"`a`.*twice"):
        decode(twice.encode(), source="state.json")


def test_malformed_blob_reference_is_refused() -> None:
    record = _record("a").model_copy(update={"key_digests_ref": "../../etc/passwd"})
    with pytest.raises(StateError, match="key_digests_ref"):
        decode(self_contained(_state(a=record)), source="state.json")


def test_key_spills_live_under_the_project_and_dead_runs_leftovers_go(tmp_path: Path) -> None:
    root = _project(tmp_path)
    scratch = root / SCRATCH_DIR
    scratch.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    leftover = scratch / f"keys-{int(dead.stdout)}-abc"
    leftover.write_bytes(b"x")
    mine = scratch / f"keys-{os.getpid()}-live"
    mine.write_bytes(b"x")
    code = (
        "import sys; from pathlib import Path; from reconciler.manifests.jsonl import scan_jsonl;"
        "from reconciler.manifests.model import Task; import tempfile, os;"
        # workers=2: an input small enough is checked in memory and spills nothing.
        "r = Path(sys.argv[1]); s = scan_jsonl(r / 'data/a.jsonl', Task.GENERATE, r, workers=2);"
        "print(len(s.digest.key_digests), os.listdir(r / '.reconciler/tmp'),"
        " [n for n in os.listdir(tempfile.gettempdir()) if n.startswith('reconciler-keys-')])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert not leftover.exists() and mine.exists()
    count, listed = out.split(" ", 1)
    assert count == "1" and "keys-" in listed


def test_plan_file_with_hostile_json_is_a_plan_error(tmp_path: Path) -> None:
    from reconciler.errors import PlanError
    from reconciler.plan import planfile

    for data in ["9" * 5_000, "[" * 100_000 + "]" * 100_000, json.dumps({"kind": 1})]:
        with pytest.raises(PlanError):
            planfile.loads(data.encode())
