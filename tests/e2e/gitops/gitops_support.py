"""Helpers for the GitOps tests: the repository's own files, a throwaway git repository with a
bare remote, and the GitHub Actions environment (outputs, summary) faked with plain files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
RUN_SH = REPO / ".github" / "actions" / "reconciler" / "run.sh"
ACTION_YML = REPO / ".github" / "actions" / "reconciler" / "action.yml"
BIN = Path(sys.executable).parent

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "tester",
    "GIT_AUTHOR_EMAIL": "tester@example.com",
    "GIT_COMMITTER_NAME": "tester",
    "GIT_COMMITTER_EMAIL": "tester@example.com",
}

EVAL_MANIFEST = """\
apiVersion: reconciler/v1
kind: BatchJob
metadata:
  name: eval
spec:
  model: gemini-2.5-flash
  source:
    file: data/eval.jsonl
  output: results/eval.jsonl
"""


def request_line(key: str, text: str) -> str:
    """One JSONL input line: a keyed GenerateContentRequest asking `text`."""
    return json.dumps({"key": key, "request": {"contents": [{"parts": [{"text": text}]}]}}) + "\n"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a CI step: no RECONCILER_* or GITHUB_* leaking in from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECONCILER_", "GITHUB_", "GIT_", "RUNNER_", "INPUT_"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env=clean_env(**GIT_IDENTITY),
    ).stdout


def read_outputs(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT's `name=value` lines as a dict (the last value of a name wins)."""
    outputs: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            outputs[name] = value
    return outputs


@dataclass
class ActionRun:
    """One `run.sh` invocation's results."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


@dataclass
class GitOpsRepo:
    """A git repository with a bare `origin`, holding one file-based job, run against the
    embedded emulator; `run()` calls the action's run.sh as a workflow step would."""

    root: Path
    remote: Path
    runner: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str) -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)

    def run(self, subcommand: str, timeout: float = 180, **env: str) -> ActionRun:
        """run.sh SUBCOMMAND with fresh $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY files."""
        outputs = self.runner / f"output-{subcommand}"
        summary = self.runner / f"summary-{subcommand}"
        for path in (outputs, summary):
            path.write_text("")
        result = subprocess.run(
            ["bash", str(RUN_SH), subcommand],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=clean_env(
                GITHUB_OUTPUT=str(outputs),
                GITHUB_STEP_SUMMARY=str(summary),
                RUNNER_TEMP=str(self.runner),
                RECONCILER_BIN=str(BIN / "reconciler"),
                RECONCILER_PYTHON=sys.executable,
                **self.extra_env,
                **env,
            ),
        )
        return ActionRun(
            result.returncode,
            result.stdout,
            result.stderr,
            read_outputs(outputs),
            summary.read_text(),
        )
