"""Scratch files of a run (the per-key digest spills of a JSONL scan) under `.reconciler/tmp/`.

They once went to the system temp directory, where every killed run left its files behind for
good. Here they live in the project's own working directory, named after the process that owns
them, and a later run removes those whose owner is gone. Nothing secret is written to them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO

SCRATCH_DIR = ".reconciler/tmp"
_PREFIX = "keys-"


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (a file named after a dead one is a leftover)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def scratch_dir(project_root: Path) -> str | None:
    """`<root>/.reconciler/tmp`, created, with leftovers of dead runs removed; None when it
    cannot be created (a read-only checkout), and the system temp directory serves instead."""
    directory = project_root / SCRATCH_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    remove_left_by_dead(directory, _PREFIX)
    return str(directory)


def remove_left_by_dead(directory: Path, prefix: str, suffix: str = "") -> None:
    """Delete the files of `directory` named `<prefix><pid>-<anything><suffix>` whose process
    `pid` is gone: what runs killed before removing their own files left behind."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(suffix)):
                continue
            owner = name[len(prefix) : len(name) - len(suffix)].split("-", 1)[0]
            if owner.isdigit() and not process_alive(int(owner)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def spill_file(directory: str | None, owner: int) -> IO[bytes]:
    """A new scratch file owned by process `owner` (the scanning command, also for the files its
    forked worker writes: the worker's own pid dies before the files are read)."""
    return tempfile.NamedTemporaryFile(prefix=f"{_PREFIX}{owner}-", dir=directory, delete=False)
