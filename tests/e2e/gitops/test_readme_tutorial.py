"""The README's tutorial runs as written: its marked shell blocks, in order, in an empty
directory, against the embedded emulator. The README also keeps its two set-up commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gitops_support import REPO, clean_env

README = REPO / "README.md"
MARKED_BLOCK = re.compile(
    r"<!-- tutorial -->\s*\n```(?P<lang>sh|console)\n(?P<body>.*?)^```", re.DOTALL | re.MULTILINE
)


def tutorial_script(markdown: str) -> str:
    """The commands of every block marked `<!-- tutorial -->`: a ```sh block whole, a
    ```console block's `$ ` lines (their output lines are for the reader)."""
    parts = []
    for block in MARKED_BLOCK.finditer(markdown):
        body = block["body"]
        if block["lang"] == "console":
            body = "".join(line[2:] + "\n" for line in body.splitlines() if line.startswith("$ "))
        parts.append(body)
    return "".join(parts)


def test_tutorial_extraction_takes_marked_blocks_only() -> None:
    markdown = (
        "```sh\nnot-marked\n```\n<!-- tutorial -->\n```sh\necho one\n```\n"
        "<!-- tutorial -->\n\n```console\n$ echo two\ntwo\n```\n"
    )
    assert tutorial_script(markdown) == "echo one\necho two\n"


def test_readme_tutorial_runs_against_the_emulator(tmp_path: Path) -> None:
    script = tutorial_script(README.read_text())
    for step in ("reconciler validate", "reconciler plan", "reconciler apply", "reconciler status"):
        assert step in script, f"the tutorial shows `{step}`"

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=clean_env(HOME=str(tmp_path)),
    )

    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    project = tmp_path / "hello-batch"
    results = (project / "results" / "questions.jsonl").read_text().splitlines()
    assert len(results) == 3, "the tutorial's three questions all have results"
    assert (project / "state" / "reconciler.state.json").is_file()


def test_readme_keeps_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "\n    make demo\n" in text
    assert "\n    make test\n" in text
    makefile = (REPO / "Makefile").read_text()
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()
