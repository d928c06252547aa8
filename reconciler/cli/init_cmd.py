"""`reconciler init`: a new project in a directory, never overwriting a file that is there."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import click

from reconciler.cli.context import CliContext
from reconciler.errors import ConfigError

_PROJECT_FILE = """\
# The project file: its directory is the project root. Every setting can be overridden by a
# RECONCILER_<NAME> variable or a flag; `reconciler schema --project` prints them all.
# A stable id: it names this project in its jobs' identity tags. Keep it unique among the
# projects sharing an API key: two projects with one id would adopt each other's jobs.
project: {project}
manifests: manifests            # where the BatchJob manifests are
state: state/reconciler.state.json   # commit it; or a postgresql:// URL
# `emulator` runs an embedded emulator of the Batch API: no key, no cost, jobs settle in
# seconds. Change it to `gemini` for the real API (the key comes from GEMINI_API_KEY) once
# `reconciler doctor` passes.
endpoint: emulator
emulator:
  job_seconds: 2
guardrails:
  max_estimated_cost_usd: 1.0   # plan refuses anything estimated above this
"""

_MANIFEST = """\
# One batch job. Edit the input or the spec and `reconciler plan` shows what changes;
# `reconciler apply` makes the service match. Every field: `reconciler schema`.
apiVersion: reconciler/v1
kind: BatchJob
metadata:
  name: {name}                  # identity in the state: [a-z0-9-], at most 63 characters
  labels: {{team: me}}           # free-form; changing them never re-runs the job
spec:
  model: gemini-2.5-flash-lite  # a model that supports batch
  task: generate                # generate | embed
  source:
    file: data/{name}.jsonl     # one request per line, each with a unique key
  output: results/{name}.jsonl  # a local file, or gs://bucket/prefix/ (the gcs extra)
  policy:
    resubmit: [FAILED, EXPIRED] # end states after which apply creates the job again
    max_attempts: 3
"""

_INPUT = """\
{"key": "q1", "request": {"contents": [{"parts": [{"text": "What is a batch job?"}]}]}}
{"key": "q2", "request": {"contents": [{"parts": [{"text": "Why keep batch jobs in git?"}]}]}}
"""

_IGNORED = (".reconciler/", "*.lock", "*.backup", "*.journal")
"""What README's state section says to ignore: working files, and the local state's lock, backup
and journal (a locked command's writes, folded into the state file when it ends)."""
_ID = re.compile(r"[^a-z0-9]+")


_SUFFIX_BYTES = 3
"""A random suffix of 6 hex digits: two repositories cloned into directories of one name (every
team has an `evals`) get different ids, so on one API key they never share identity tags, nor,
without `?workspace=`, a PostgreSQL state row."""


def project_id(directory_name: str, suffix: str | None = None) -> str:
    """A `project:` id from a directory name and a random suffix: lowercase, `-` for runs of
    anything else, at most 63 characters, never empty (`reconciler` stands in)."""
    tail = suffix if suffix is not None else secrets.token_hex(_SUFFIX_BYTES)
    slug = _ID.sub("-", directory_name.lower()).strip("-")[: 62 - len(tail)].strip("-")
    return f"{slug or 'reconciler'}-{tail}"


@dataclass(frozen=True, slots=True)
class _NewFile:
    relative: str
    text: str


def _files(root: Path, name: str) -> list[_NewFile]:
    return [
        _NewFile("reconciler.yaml", _PROJECT_FILE.format(project=project_id(root.name))),
        _NewFile(f"manifests/{name}.yaml", _MANIFEST.format(name=name)),
        _NewFile(f"data/{name}.jsonl", _INPUT),
    ]


def _gitignore_lines(path: Path) -> list[str]:
    """The lines .gitignore lacks; an existing .gitignore is added to, never rewritten."""
    present = set(path.read_text(encoding="utf-8").splitlines()) if path.exists() else set()
    return [line for line in _IGNORED if line not in present]


@click.command("init")
@click.option(
    "--name",
    default="questions",
    show_default=True,
    help="Name of the example job (its manifest, input and output are named after it).",
)
@click.pass_obj
def init(ctx: CliContext, name: str) -> None:
    """Start a project here (or in -C DIR): reconciler.yaml, one example manifest and its input,
    and the .gitignore lines for reconciler's working files.

    Nothing is overwritten: if any of the files exists, init changes nothing and names it. An
    existing .gitignore gets only the lines it lacks.
    """
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name):
        raise ConfigError(f"--name {name!r}: use lowercase letters, digits and `-`")
    root = (ctx.project_dir or Path.cwd()).resolve()
    files = _files(root, name)
    for new in files:
        if (root / new.relative).exists():
            raise ConfigError(
                f"{root / new.relative} already exists; init overwrites nothing",
                hint="remove it, or run init in an empty directory (-C DIR)",
            )
    root.mkdir(parents=True, exist_ok=True)
    for new in files:
        target = root / new.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x": a file that appeared since the check above is still never overwritten.
        with target.open("x", encoding="utf-8") as handle:
            handle.write(new.text)
        click.echo(f"created {new.relative}", err=True)
    gitignore = root / ".gitignore"
    missing = _gitignore_lines(gitignore)
    if missing:
        existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
        separator = "" if not existing or existing.endswith("\n") else "\n"
        with gitignore.open("a", encoding="utf-8") as handle:
            handle.write(separator + "\n".join(missing) + "\n")
        click.echo(f"{'updated' if existing else 'created'} .gitignore", err=True)
    where = "" if root == Path(os.getcwd()).resolve() else f" -C {root}"
    click.echo(
        f"Next: `reconciler{where} plan`, then `reconciler{where} apply --wait`"
        " (against the embedded emulator; `reconciler doctor` before switching to gemini).",
        err=True,
    )
