"""Which manifest files a run reads: the paths given (files, or folders searched recursively),
resolved, each once, in the order of their paths' parts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from reconciler.config import Project
from reconciler.errors import Diagnostic

MANIFEST_SUFFIXES = (".yaml", ".yml")


def discover(
    project: Project, paths: Sequence[Path] | None, diagnostics: list[Diagnostic]
) -> list[Path]:
    """Manifest files, resolved: each path as given (a file, or a directory searched
    recursively, hidden entries and symlinked folders skipped as `Path.rglob` skips them)."""
    targets = list(paths) if paths else [project.path(project.config.manifests)]
    found: list[Path] = []
    for target in targets:
        target = target.absolute()
        if target.is_dir():
            found.extend(_manifest_files(target))
        elif target.is_file():
            found.append(target.resolve())
        else:
            what = "manifests directory" if not paths else "path"
            diagnostics.append(
                Diagnostic(
                    f"{what} `{_shown(target, project.root)}` does not exist",
                    hint=None if paths else "create it, or set `manifests:` in reconciler.yaml",
                )
            )
    return list(dict.fromkeys(found))


def _manifest_files(folder: Path) -> list[Path]:
    """The manifest files under `folder`, resolved, in the order of their paths' parts.

    One `scandir` per folder: an entry's type comes with the listing, and only symlinks are
    resolved (the folder once, a plain file under it is that folder plus its name), where a
    glob, an `is_file` and a `resolve` per file cost three walks of the path each."""
    found: list[tuple[tuple[str, ...], Path]] = []
    pending: list[tuple[str, tuple[str, ...]]] = [(os.path.realpath(folder), ())]
    while pending:
        real, parts = pending.pop()
        try:
            with os.scandir(real) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            where = (*parts, entry.name)
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, where))
                elif os.path.splitext(entry.name)[1] in MANIFEST_SUFFIXES and entry.is_file():
                    symlink = entry.is_symlink()
                    found.append(
                        (where, Path(os.path.realpath(entry.path) if symlink else entry.path))
                    )
            except OSError:
                continue
    return [path for _, path in sorted(found, key=lambda item: item[0])]


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
