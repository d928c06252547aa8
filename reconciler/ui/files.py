"""The files the web view reads, each confined to the project: results copies, inputs, images
beside the results, manifests, and other attempts' results kept under `.reconciler/ui/`.

Every path comes from data a user can edit (the state, a manifest, a results line, a URL), so
each is resolved (symlinks followed) and refused unless it stays inside the project root:
`..`, absolute paths and links pointing out are answered "not found", never read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from reconciler.manifests.desired import DesiredResource
from reconciler.manifests.paths import confine
from reconciler.state.document import ResourceRecord
from reconciler.ui.lineindex import KeyIndex, LineIndex, key_of
from reconciler.ui.records import inline_prompts, input_prompt

ATTEMPT_OUTPUTS_DIR = ".reconciler/ui/outputs"
"""Where other attempts' results, fetched from the service for a diff, are kept."""

OUTPUTS_MAX_BYTES = 2 << 30
"""Other attempts' results kept at most: past it, the least recently used go first (a diff
fetches them again when asked)."""


def output_path(root: Path, job_name: str) -> Path:
    """Where the results of job `job_name` are kept once fetched."""
    return root / ATTEMPT_OUTPUTS_DIR / f"{job_name.replace('/', '-')}.jsonl"


def prune_outputs(
    root: Path, job_names: Iterable[str], max_bytes: int = OUTPUTS_MAX_BYTES
) -> list[Path]:
    """Delete the fetched results of jobs the state no longer names (`job_names`: every job
    of every attempt it records), leftovers of interrupted downloads, and then the least
    recently used beyond `max_bytes`; the paths deleted."""
    folder = root / ATTEMPT_OUTPUTS_DIR
    wanted = {output_path(root, name).name for name in job_names}
    try:
        entries = [entry for entry in folder.iterdir() if entry.is_file()]
    except FileNotFoundError:
        return []
    removed = [entry for entry in entries if entry.name not in wanted]
    kept = sorted(
        (entry.stat().st_mtime, entry.stat().st_size, entry)
        for entry in entries
        if entry.name in wanted
    )
    total = sum(size for _, size, _ in kept)
    for _, size, entry in kept[:-1]:  # the newest stays, however large
        if total <= max_bytes:
            break
        removed.append(entry)
        total -= size
    for entry in removed:
        entry.unlink(missing_ok=True)
    return removed


def inside(root: Path, relative: str, *, within: Path | None = None) -> Path | None:
    """`relative` resolved under `within` (default: the root), or None when it is absolute,
    empty, or resolves (through `..` or a symlink) outside the project root or `within`."""
    if not relative or relative.startswith(("/", "\\")) or PurePosixPath(relative).is_absolute():
        return None
    if ":" in PurePosixPath(relative).parts[0]:
        return None
    base = within if within is not None else root
    target, problem = confine(base, relative)
    if target is None or problem is not None:
        return None
    resolved_root = root.resolve()
    if target != resolved_root and resolved_root not in target.parents:
        return None
    return target


def existing_file(root: Path, relative: str, *, within: Path | None = None) -> Path | None:
    target = inside(root, relative, within=within)
    return target if target is not None and target.is_file() else None


def results_file(root: Path, record: ResourceRecord | None) -> Path | None:
    """The resource's collected results copy on disk, if it is a local file in the project."""
    if record is None or record.results is None:
        return None
    if record.results.location.startswith(("gs://", "bq://")):
        return None
    return existing_file(root, record.results.location)


@dataclass(slots=True)
class Prompts:
    """Prompt text by request key, from the resource's input (a JSONL file or inline requests).

    Results come back in input order (apply merges shards in input order), so line `n` of the
    input is tried first; only a key found elsewhere builds the input's key index.
    """

    root: Path
    resource: DesiredResource | None
    _inline: dict[str, str] | None = None
    _lines: LineIndex | None = None
    _keys: KeyIndex | None = None
    _loaded: bool = field(default=False)

    def _load(self) -> None:
        self._loaded = True
        if self.resource is None:
            return
        source = self.resource.manifest.spec.source
        if source.requests is not None:
            self._inline = inline_prompts(source.requests)
        elif source.file is not None:
            path = existing_file(self.root, source.file)
            if path is not None:
                self._lines = LineIndex.open(path, self.root)

    def prompt(self, key: str | None, line: int) -> str | None:
        if not self._loaded:
            self._load()
        if key is None:
            return None
        if self._inline is not None:
            return self._inline.get(key)
        if self._lines is None:
            return None
        raw = self._lines.line(line)
        if raw is None or key_of(raw) != key:
            if self._keys is None:
                self._keys = KeyIndex(self._lines)
            found = self._keys.line_of(key)
            raw = self._lines.line(found) if found is not None else None
        return input_prompt(raw)[1] if raw is not None else None


OutputFetcher = Callable[[str], Path | None]
"""Job name -> that job's results as a local JSONL file (downloaded on first use), or None.

The CLI supplies it (it owns the service connection); the view only reads what it returns."""
