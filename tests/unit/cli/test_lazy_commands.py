"""The command line starts fast: `--help` and `validate` import no command they do not run.

pre-commit runs `reconciler validate` on every commit, so the SDK (google.genai), the
emulator's server stack and the apply stages must stay out of it; and `--help` must still list
every command with the short help the command itself declares. `plan` reads the service
without the SDK (live/rest_reads.py): importing it was a tenth of a no-op plan at 10,000.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli.main import COMMANDS, cli

HEAVY = ("google.genai", "starlette", "uvicorn", "deepdiff", "rich", "reconciler.apply")
"""Modules (and their children) neither command may import."""


def _modules_imported_by(args: list[str], cwd: Path, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """Run the CLI in a fresh interpreter and return the `heavy` modules it imported."""
    code = (
        "import json, sys\n"
        "from reconciler.cli.main import cli\n"
        f"sys.argv = ['reconciler', *{args!r}]\n"
        "try:\n"
        "    cli()\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}"
        f" or any(m == h or m.startswith(h + '.') for h in {heavy!r}))\n"
        "print(json.dumps({'status': status, 'heavy': heavy}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 0, done.stderr
    imported: list[str] = result["heavy"]
    return imported


def test_help_imports_no_command_module_nor_heavy_library(tmp_path: Path) -> None:
    assert _modules_imported_by(["--help"], tmp_path) == []


def test_validate_on_an_empty_project_imports_neither_the_sdk_nor_the_server_stack(
    tmp_path: Path,
) -> None:
    (tmp_path / "reconciler.yaml").write_text("manifests: manifests\n")
    (tmp_path / "manifests").mkdir()
    assert _modules_imported_by(["validate"], tmp_path) == []


def _emulated_project(tmp_path: Path) -> Path:
    """A project of one job uploading an input, against the embedded emulator."""
    (tmp_path / "reconciler.yaml").write_text("manifests: manifests\nendpoint: emulator\n")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "data").mkdir()
    line = {"key": "a", "request": {"contents": [{"parts": [{"text": "hi"}]}]}}
    (tmp_path / "data" / "in.jsonl").write_text(json.dumps(line) + "\n")
    (tmp_path / "manifests" / "job.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata: {name: job}\n"
        "spec: {model: gemini-2.5-flash, source: {file: data/in.jsonl}, output: out/job.jsonl}\n"
    )
    return tmp_path


def test_plan_against_the_service_imports_neither_the_sdk_nor_the_apply_stages(
    tmp_path: Path,
) -> None:
    # A plan that reads everything it can: the jobs, the files (the manifest uploads an input)
    # and the model, from the embedded emulator (whose server stack this run needs).
    heavy = ("google.genai", "deepdiff", "rich", "reconciler.apply")
    assert _modules_imported_by(["plan"], _emulated_project(tmp_path), heavy) == []


@pytest.mark.parametrize("args", [["status"], ["state", "list"], ["cost"]], ids=" ".join)
def test_commands_that_only_read_import_no_sdk(tmp_path: Path, args: list[str]) -> None:
    # The test suites and CI run these hundreds of times; each SDK import costs ~1 s of CPU.
    assert _modules_imported_by(args, _emulated_project(tmp_path), ("google.genai",)) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_stored_short_help_equals_the_commands_own(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert command.name == name
    assert COMMANDS[name].short_help == command.get_short_help_str(limit=10**6)


def test_help_lists_every_command_as_click_would_from_the_commands_themselves() -> None:
    eager = click.Group(
        "reconciler", params=cli.params, help=cli.help, context_settings=cli.context_settings
    )
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        eager.add_command(command, name)
    lazy_help = CliRunner().invoke(cli, ["--help"], prog_name="reconciler").output
    eager_help = CliRunner().invoke(eager, ["--help"], prog_name="reconciler").output
    assert lazy_help == eager_help
    for name in COMMANDS:
        assert f"\n  {name} " in lazy_help


def test_an_unknown_command_is_refused_with_usage_error() -> None:
    result = CliRunner().invoke(cli, ["aply"])
    assert result.exit_code != 0
    assert "No such command 'aply'" in result.output


def test_an_apply_against_the_developer_api_loads_neither_vertex_nor_the_json_event_models() -> (
    None
):
    # What `apply` (text output) imports before its run: the executor, the stages, the
    # adapter, the text renderer; the Vertex modules, the `--format json` line models and the
    # other renderers (the JSON plan document's models, Markdown, status) are for other runs.
    code = (
        "import json, sys\n"
        "import reconciler.cli.apply_cmd, reconciler.apply.executor\n"
        "from reconciler.cli.shared import _terminal_reporter\n"
        "from reconciler.render.text import render_text\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(("
        "'reconciler.live.vertex', 'reconciler.cli.event_stream', 'reconciler.render.json', "
        "'reconciler.render.markdown', 'reconciler.render.status')))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_the_entry_point_leaves_no_live_object_for_the_exit_collections_to_walk() -> None:
    # The interpreter's last collections walk every object alive at exit (0.2-0.3 s of CPU
    # after an apply); the console script freezes them first, whatever the command's outcome.
    code = (
        "import atexit, gc, sys\n"
        "from reconciler.cli.main import main\n"
        "atexit.register(lambda: print(gc.get_freeze_count() > 0))\n"
        "sys.argv = ['reconciler', *sys.argv[1:]]\n"
        "main()\n"
    )
    for args, status in ((["--help"], 0), (["no-such-command"], 1)):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert done.returncode == status, done.stderr
        assert done.stdout.splitlines()[-1] == "True"
