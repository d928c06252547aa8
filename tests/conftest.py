"""Set-up shared by every suite: the package's bytecode compiled once for the CLI subprocesses."""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reconciler"


def pytest_configure(config: pytest.Config) -> None:
    """Compile `reconciler/` before any test runs, once per session (the xdist controller).

    Hundreds of tests run `python -m reconciler` in a subprocess. Where PYTHONDONTWRITEBYTECODE
    is set (this project's CI and development machines set it), no process caches the package's
    bytecode, so every subprocess compiled the ~30,000 lines it imports again: about 0.3 s of
    CPU a run. Python reads a `.pyc` whether or not it may write one, and recompiles a source
    newer than its `.pyc` itself, so nothing stale is ever run. `__pycache__/` is ignored by git.
    """
    if hasattr(config, "workerinput"):  # an xdist worker: its controller compiled already
        return
    compileall.compile_dir(PACKAGE, quiet=1, workers=1)
