"""End-to-end fixtures: a real git project on disk, the emulator on a free port, the CLI in a
subprocess (`python -m reconciler`), exactly as a user or CI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.state import codec, journal
from reconciler.state.stored_form import DETAILS_BLOB


def service_client(emulator: EmulatorHandle) -> Any:
    """The real SDK pointed at the emulator, as a user's own script would reach the service."""
    from google import genai

    return genai.Client(api_key="test", http_options={"base_url": emulator.base_url})


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator", job_seconds=0.6) as handle:
        yield handle


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )
    return result.stdout


def jsonl(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def text_request(text: str) -> dict[str, Any]:
    return {"contents": [{"parts": [{"text": text}]}]}


@dataclass
class Project:
    root: Path
    endpoint: str

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def manifest(self, name: str, spec: str, *, labels: str = "") -> Path:
        body = f"apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: {name}\n{labels}spec:\n{spec}"
        return self.write(f"manifests/{name}.yaml", body)

    def commit(self, message: str = "change") -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message, "--allow-empty")

    def _env(self, env: dict[str, str] | None) -> dict[str, str]:
        """The CLI's environment: this test's endpoint, no colour, none of the caller's
        RECONCILER_ settings, then `env`."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        full_env.update({"RECONCILER_ENDPOINT": self.endpoint, "NO_COLOR": "1"})
        full_env.update(env or {})
        return full_env

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", "-C", str(self.root), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(env),
            stdin=subprocess.DEVNULL,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """The CLI as `run` runs it, in the background (stdout and stderr piped)."""
        return subprocess.Popen(
            [sys.executable, "-m", "reconciler", "-C", str(self.root), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env(env),
        )

    def state(self) -> dict[str, Any]:
        """The state as the full document: the file with any journal a killed apply left
        replayed, decoded (the file leaves out each record's name, its fields at their
        defaults or derivable, and keeps its details in blobs beside it), then spelled out
        with every field."""
        path = self.root / "state" / "reconciler.state.json"
        raw = codec.parse(path.read_bytes(), source="state")
        entries = path.with_name(path.name + journal.SUFFIX)
        if entries.exists():
            journal.replay(raw, entries.read_bytes(), source="state")
        details = path.parent / "blobs" / DETAILS_BLOB

        def blobs(addresses: Collection[str]) -> dict[str, bytes]:
            return {a: (details / a).read_bytes() for a in addresses if (details / a).exists()}

        decoded = codec.decode_raw(raw, source="state", blobs=blobs)
        full: dict[str, Any] = decoded.model_dump(mode="json")
        return full


def file_job_spec(
    source: str, output: str, *, model: str = "gemini-2.5-flash", extra: str = ""
) -> str:
    return f"  model: {model}\n  source:\n    file: {source}\n  output: {output}\n{extra}"


@pytest.fixture
def project(tmp_path: Path, emulator: EmulatorHandle) -> Project:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    proj = Project(root, emulator.base_url)
    proj.write(
        "reconciler.yaml",
        "manifests: manifests\nstate: state/reconciler.state.json\n"
        "poll:\n  initial_seconds: 0.2\n  max_seconds: 0.5\n",
    )
    return proj
