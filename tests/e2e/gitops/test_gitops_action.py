"""The GitHub Action's shell steps (run.sh) run locally, as a workflow step would run them:
against the embedded emulator, in a throwaway git repository pushing to a bare remote, with
$GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY as plain files and a fake `gh` on PATH."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from gitops_support import BIN, RUN_SH, GitOpsRepo, clean_env, git, request_line

STATE_FILE = "state/reconciler.state.json"


def test_plan_writes_markdown_summary_and_reports_changes(gitops_repo: GitOpsRepo) -> None:
    plan_file = gitops_repo.runner / "reconciler.plan"

    run = gitops_repo.run("plan", PLAN_FILE=str(plan_file))

    assert run.returncode == 0, run.stderr
    assert run.outputs["has_changes"] == "true"
    assert run.outputs["exitcode"] == "2"
    assert run.outputs["plan_file"] == str(plan_file)
    assert plan_file.stat().st_size > 0
    assert "eval" in run.summary
    assert Path(run.outputs["markdown_file"]).read_text() in run.summary
    assert "\x1b[" not in run.summary, "no terminal colours in Markdown"


def test_plan_failure_is_shown_in_the_summary_and_fails_the_step(gitops_repo: GitOpsRepo) -> None:
    gitops_repo.write("manifests/eval.yaml", "apiVersion: reconciler/v1\nkind: BatchJob\n")

    run = gitops_repo.run("plan")

    assert run.returncode == 1
    assert run.outputs["exitcode"] == "1"
    assert run.outputs["has_changes"] == "false"
    assert "reconciler plan failed" in run.summary
    assert "eval.yaml" in run.summary


def test_apply_of_saved_plan_commits_state_back_and_pushes_it(gitops_repo: GitOpsRepo) -> None:
    first = gitops_repo.run("apply", ARGS="--wait --timeout 60s", COMMIT_STATE="true")
    assert first.returncode == 0, first.stderr
    assert first.outputs["state_committed"] == "true"
    with (gitops_repo.root / "data" / "eval.jsonl").open("a") as lines:
        lines.write(request_line("q3", "One more question."))
    gitops_repo.commit("Ask one more question")
    plan_file = gitops_repo.runner / "reconciler.plan"
    assert gitops_repo.run("plan", PLAN_FILE=str(plan_file)).outputs["has_changes"] == "true"
    before = git(gitops_repo.root, "rev-parse", "HEAD").strip()

    run = gitops_repo.run(
        "apply",
        PLAN_FILE=str(plan_file),
        ARGS="--wait --timeout 60s",
        COMMIT_STATE="true",
        GITHUB_REF_NAME="main",
    )

    assert run.returncode == 0, run.stderr
    assert "applying the saved plan" in run.stderr
    assert run.outputs["state_committed"] == "true"
    head = git(gitops_repo.root, "rev-parse", "HEAD").strip()
    assert head != before
    assert run.outputs["state_commit"] == head
    author = git(gitops_repo.root, "log", "-1", "--format=%an <%ae>|%s")
    assert author.startswith("github-actions[bot] <41898282+github-actions[bot]@users.noreply")
    assert "[skip ci]" in author
    changed = git(gitops_repo.root, "show", "--name-only", "--format=", "HEAD").split()
    assert STATE_FILE in changed
    assert not any(name.endswith((".lock", ".backup")) for name in changed)
    assert git(gitops_repo.remote, "rev-parse", "main").strip() == head
    committed = json.loads(git(gitops_repo.root, "show", f"HEAD:{STATE_FILE}"))
    assert committed["serial"] >= 2
    assert "### reconciler apply (`.`): succeeded" in run.summary
    assert "#### Cost recorded in the state" in run.summary
    assert "gemini-" in run.summary.split("#### Cost recorded in the state")[1]
    assert "COST (ACTUAL / EST.)" in run.summary.split("#### Estimate vs actual, per resource")[1]
    assert len((gitops_repo.root / "results" / "eval.jsonl").read_text().splitlines()) == 3

    again = gitops_repo.run("plan")
    assert again.returncode == 0, again.stderr
    assert again.outputs["has_changes"] == "false"
    assert git(gitops_repo.root, "status", "--porcelain", "--", STATE_FILE) == ""


def test_plan_saved_before_the_first_apply_can_be_applied(gitops_repo: GitOpsRepo) -> None:
    # The first pull request of a project is planned before any state exists; its apply on
    # merge must accept that plan (Terraform skips the lineage check for a state never written).
    plan_file = gitops_repo.runner / "reconciler.plan"
    assert gitops_repo.run("plan", PLAN_FILE=str(plan_file)).outputs["has_changes"] == "true"

    run = gitops_repo.run("apply", PLAN_FILE=str(plan_file), ARGS="--wait --timeout 60s")

    assert run.returncode == 0, run.stderr
    assert (gitops_repo.root / "results" / "eval.jsonl").exists()


def test_apply_with_unchanged_state_makes_no_commit(gitops_repo: GitOpsRepo) -> None:
    first = gitops_repo.run("apply", ARGS="--wait --timeout 60s", COMMIT_STATE="true")
    assert first.returncode == 0, first.stderr
    head = git(gitops_repo.root, "rev-parse", "HEAD").strip()

    second = gitops_repo.run("apply", ARGS="--wait --timeout 60s", COMMIT_STATE="true")

    assert second.returncode == 0, second.stderr
    assert second.outputs["state_committed"] == "false"
    assert git(gitops_repo.root, "rev-parse", "HEAD").strip() == head


def test_stale_saved_plan_is_refused_unless_replanning_is_asked(gitops_repo: GitOpsRepo) -> None:
    plan_file = gitops_repo.runner / "reconciler.plan"
    assert gitops_repo.run("plan", PLAN_FILE=str(plan_file)).returncode == 0
    with (gitops_repo.root / "data" / "eval.jsonl").open("a") as lines:
        lines.write(request_line("q3", "One more question."))

    refused = gitops_repo.run("apply", PLAN_FILE=str(plan_file), ON_STALE_PLAN="fail")
    assert refused.returncode == 1
    assert "stale" in refused.stderr
    assert refused.outputs["exitcode"] == "1"

    replanned = gitops_repo.run(
        "apply", PLAN_FILE=str(plan_file), ON_STALE_PLAN="replan", ARGS="--wait --timeout 60s"
    )
    assert replanned.returncode == 0, replanned.stderr
    assert "planning and applying afresh" in replanned.stderr
    results = (gitops_repo.root / "results" / "eval.jsonl").read_text().splitlines()
    assert len(results) == 3


# -- the PR comment and the drift issue, through a fake `gh` that records its calls ----------

FAKE_GH = r"""#!/usr/bin/env python3
# A stand-in for `gh api`: answers GETs from $FAKE_GH_DIR/<path>.json through jq (gh's --jq),
# records every call with the body it would send, and answers writes with an html_url.
import json, os, subprocess, sys
args = sys.argv[1:]
assert args[0] == "api", args
state = os.environ["FAKE_GH_DIR"]
method, path, jq, fields = "GET", None, None, {}
i = 1
while i < len(args):
    a = args[i]
    if a == "--method": method = args[i + 1]; i += 2
    elif a == "--jq": jq = args[i + 1]; i += 2
    elif a in ("-F", "-f"):
        name, _, value = args[i + 1].partition("=")
        if a == "-F" and value.startswith("@"):
            value = open(value[1:]).read()
        fields[name] = value; i += 2
    elif a == "--paginate": i += 1
    else: path = a; i += 1
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    log.write(json.dumps({"method": method, "path": path, "fields": fields}) + "\n")
if method == "GET":
    key = path.split("?")[0].replace("/", "_")
    data = open(os.path.join(state, key + ".json")).read()
    out = subprocess.run(["jq", "-r", jq], input=data, capture_output=True, text=True, check=True)
    sys.stdout.write(out.stdout)
else:
    reply = {"html_url": "https://github.example/" + path}
    if jq:
        sys.stdout.write(reply["html_url"] + "\n")
    else:
        sys.stdout.write(json.dumps(reply))
"""


@pytest.fixture
def fake_gh(tmp_path: Path) -> Path:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (the fake gh evaluates gh's --jq expressions with it)")
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    state = tmp_path / "gh-state"
    state.mkdir()
    return state


def _run_gh_step(
    subcommand: str, state: Path, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    base = clean_env(
        FAKE_GH_DIR=str(state),
        GITHUB_REPOSITORY="octo/jobs",
        RUNNER_TEMP=str(tmp_path / "runner"),
        RECONCILER_PYTHON=str(BIN / "python"),
        GH_TOKEN="not-a-real-token",
        **env,
    )
    base["PATH"] = f"{tmp_path / 'fake-bin'}:{base['PATH']}"
    return subprocess.run(
        ["bash", str(RUN_SH), subcommand], capture_output=True, text=True, env=base, timeout=60
    )


def _calls(state: Path) -> list[dict]:
    path = state / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _writes(state: Path) -> list[dict]:
    return [call for call in _calls(state) if call["method"] != "GET"]


def test_comment_is_created_once_then_updated_in_place(fake_gh: Path, tmp_path: Path) -> None:
    markdown = tmp_path / "plan.md"
    markdown.write_text("## Plan: 1 to create\n")
    comments = fake_gh / "repos_octo_jobs_issues_7_comments.json"
    comments.write_text(json.dumps([{"id": 11, "body": "LGTM"}]))

    first = _run_gh_step(
        "comment", fake_gh, tmp_path, PR_NUMBER="7", MARKDOWN_FILE=str(markdown), PROJECT_DIR="."
    )
    assert first.returncode == 0, first.stderr
    [created] = _writes(fake_gh)
    assert (created["method"], created["path"]) == ("POST", "repos/octo/jobs/issues/7/comments")
    body = created["fields"]["body"]
    assert body.startswith("<!-- reconciler-plan:. -->\n")
    assert "## Plan: 1 to create" in body

    # The re-run finds its own comment by the hidden marker and edits it.
    comments.write_text(json.dumps([{"id": 11, "body": "LGTM"}, {"id": 42, "body": body}]))
    markdown.write_text("## Plan: no changes\n")
    second = _run_gh_step(
        "comment", fake_gh, tmp_path, PR_NUMBER="7", MARKDOWN_FILE=str(markdown), PROJECT_DIR="."
    )
    assert second.returncode == 0, second.stderr
    updated = _writes(fake_gh)[-1]
    assert (updated["method"], updated["path"]) == ("PATCH", "repos/octo/jobs/issues/comments/42")
    assert "no changes" in updated["fields"]["body"]
    assert len(_writes(fake_gh)) == 2
    assert "not-a-real-token" not in first.stdout + first.stderr + second.stdout + second.stderr


def test_comment_marker_is_per_project_dir(fake_gh: Path, tmp_path: Path) -> None:
    markdown = tmp_path / "plan.md"
    markdown.write_text("plan of b\n")
    (fake_gh / "repos_octo_jobs_issues_7_comments.json").write_text(
        json.dumps([{"id": 5, "body": "<!-- reconciler-plan:projects/a -->\nplan of a"}])
    )

    run = _run_gh_step(
        "comment",
        fake_gh,
        tmp_path,
        PR_NUMBER="7",
        MARKDOWN_FILE=str(markdown),
        PROJECT_DIR="projects/b",
    )

    assert run.returncode == 0, run.stderr
    [write] = _writes(fake_gh)
    assert write["method"] == "POST"
    assert write["fields"]["body"].startswith("<!-- reconciler-plan:projects/b -->")


def test_comment_is_truncated_within_githubs_limit(fake_gh: Path, tmp_path: Path) -> None:
    markdown = tmp_path / "plan.md"
    markdown.write_text("| resource | action |\n" + "| r | create ✓ |\n" * 20_000)
    (fake_gh / "repos_octo_jobs_issues_7_comments.json").write_text("[]")

    run = _run_gh_step(
        "comment", fake_gh, tmp_path, PR_NUMBER="7", MARKDOWN_FILE=str(markdown), PROJECT_DIR="."
    )

    assert run.returncode == 0, run.stderr
    body = _writes(fake_gh)[0]["fields"]["body"]
    assert len(body) <= 65_536
    assert body.startswith("<!-- reconciler-plan:. -->")
    assert "truncated" in body


def test_drift_issue_is_opened_updated_and_closed(fake_gh: Path, tmp_path: Path) -> None:
    markdown = tmp_path / "plan.md"
    markdown.write_text("1 to collect\n")
    issues = fake_gh / "repos_octo_jobs_issues.json"
    issues.write_text("[]")
    step = dict(MARKDOWN_FILE=str(markdown), PROJECT_DIR=".")

    opened = _run_gh_step("drift-issue", fake_gh, tmp_path, HAS_CHANGES="true", **step)
    assert opened.returncode == 0, opened.stderr
    [create] = _writes(fake_gh)
    assert (create["method"], create["path"]) == ("POST", "repos/octo/jobs/issues")
    assert create["fields"]["labels[]"] == "reconciler-drift"
    assert create["fields"]["body"].startswith("<!-- reconciler-drift:. -->")

    issues.write_text(json.dumps([{"number": 9, "body": create["fields"]["body"]}]))
    updated = _run_gh_step("drift-issue", fake_gh, tmp_path, HAS_CHANGES="true", **step)
    assert updated.returncode == 0, updated.stderr
    assert (_writes(fake_gh)[-1]["method"], _writes(fake_gh)[-1]["path"]) == (
        "PATCH",
        "repos/octo/jobs/issues/9",
    )

    closed = _run_gh_step("drift-issue", fake_gh, tmp_path, HAS_CHANGES="false", **step)
    assert closed.returncode == 0, closed.stderr
    last = _writes(fake_gh)[-1]
    assert (last["method"], last["path"], last["fields"]) == (
        "PATCH",
        "repos/octo/jobs/issues/9",
        {"state": "closed"},
    )
    assert len(_writes(fake_gh)) == 4  # create, update, closing comment, close


def test_drift_check_without_drift_and_without_an_issue_does_nothing(
    fake_gh: Path, tmp_path: Path
) -> None:
    markdown = tmp_path / "plan.md"
    markdown.write_text("No changes.\n")
    (fake_gh / "repos_octo_jobs_issues.json").write_text("[]")

    run = _run_gh_step(
        "drift-issue", fake_gh, tmp_path, HAS_CHANGES="false", MARKDOWN_FILE=str(markdown)
    )

    assert run.returncode == 0, run.stderr
    assert _writes(fake_gh) == []


def test_unknown_subcommand_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run(
        ["bash", str(RUN_SH), "destroy"],
        capture_output=True,
        text=True,
        env=clean_env(RUNNER_TEMP=str(tmp_path)),
    )
    assert run.returncode == 1
    assert "usage: run.sh" in run.stderr
