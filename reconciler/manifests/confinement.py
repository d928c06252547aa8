"""Output confinement across a project: no output may touch what the project reads or keeps.

An output is written by apply (a JSONL file, or a folder of images and their index). If it
named the resource's own input, a manifest, the project file, the state or anything under
`.git/` or `.reconciler/`, a collect would overwrite it; if two outputs overlapped, one
resource's results would silently replace the other's while the plan said "no changes". So every
overlap is refused at `validate`, at the output's file:line, before anything runs.

Two paths overlap when they are equal or one contains the other (a folder output contains every
file under it). Paths are compared after resolving symlinks, as `confine` resolves them.
Each check looks paths up in an index by their ancestors, so a project of N resources costs
O(N x path depth), not O(N^2) comparisons (10,000 manifests would otherwise take minutes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from reconciler.config import Project
from reconciler.errors import Diagnostic
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.desired import DesiredResource
from reconciler.manifests.paths import ProjectPaths
from reconciler.yamlsafe import JsonPath, YamlDocument

_OUTPUT: JsonPath = ("spec", "output")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Protected:
    """A path the project reads or keeps, and what it is (as the error names it)."""

    path: Path
    what: str


def check_output_confinement(
    project: Project,
    resources: Mapping[str, DesiredResource],
    documents: Mapping[str, YamlDocument],
    manifest_files: Sequence[Path],
    paths: ProjectPaths | None = None,
) -> list[Diagnostic]:
    """One error per output that overlaps a protected path or another resource's output.

    Args:
        resources: the resources of this run, by name.
        documents: the YAML document each resource was read from (for the output's location).
        manifest_files: every manifest file discovered in this run, resolved.
        paths: the run's resolved root and confined paths (a new one if not given).
    """
    paths = paths or ProjectPaths(project.root)
    protected: _PathIndex[_Protected] = _PathIndex()
    for item in _project_paths(project, paths.root, manifest_files):
        protected.add(item.path, item)
    for name, resource in sorted(resources.items()):
        for item in _inputs_of(paths, name, resource):
            protected.add(item.path, item)
    diagnostics: list[Diagnostic] = []
    claimed: _PathIndex[str] = _PathIndex()
    for name, resource in sorted(resources.items()):
        output = resource.manifest.spec.output
        if output.startswith("gs://"):
            problem = _gcs_overlap(output, name, resources)
        elif is_bigquery(output):
            problem = _table_overlap(output, name, resources)
        else:
            target, _ = paths.confine(output)
            if target is None:  # outside the root: already reported by the loader
                continue
            problem = _local_overlap(target, protected) or _output_overlap(target, claimed)
            claimed.add(target, name)
        if problem is not None:
            diagnostics.append(
                Diagnostic(
                    f"output `{output}` {problem}",
                    # Located only now: an exact location re-reads the file with the careful
                    # parser, which every manifest would otherwise pay.
                    documents[name].at(_OUTPUT),
                    hint="give every resource an output of its own, apart from inputs, "
                    "manifests, the state and .git/",
                )
            )
    return diagnostics


def _project_paths(
    project: Project, root: Path, manifest_files: Sequence[Path]
) -> list[_Protected]:
    paths = [
        _Protected(root / ".git", "the git repository (.git/)"),
        _Protected(root / ".reconciler", "the tool's working directory (.reconciler/)"),
        _Protected(project.path(project.config.manifests), "the manifests"),
    ]
    if project.config_path is not None:
        paths.append(_Protected(project.config_path.resolve(), "the project file"))
    paths.extend(_Protected(file, "a manifest") for file in manifest_files)
    state = project.config.state
    if "://" not in state:
        state_path = project.path(state)
        for suffix, what in (("", "the state"), (".backup", "the state's backup"),
                             (".lock", "the state's lock"),
                             (".journal", "the state's journal")):  # fmt: skip
            paths.append(_Protected(state_path.with_name(state_path.name + suffix), what))
        paths.append(_Protected(state_path.parent / "blobs", "the state's blobs"))
    return paths


def _inputs_of(paths: ProjectPaths, name: str, resource: DesiredResource) -> list[_Protected]:
    spec = resource.manifest.spec
    relatives: list[tuple[str, str]] = []
    if spec.source.file is not None:
        relatives.append((spec.source.file, f"the input of `{name}`"))
    relatives.extend((media.path, f"a media file of `{name}`") for media in resource.media)
    found: list[_Protected] = []
    for relative, what in relatives:
        target, _ = paths.confine(relative)
        if target is not None:
            found.append(_Protected(target, what))
    return found


def _ancestors(path: str) -> Iterator[str]:
    """`Path(path).parents` as strings, for an absolute normalised path (a resolved one)."""
    cut = path.rfind("/")
    while cut > 0:
        path = path[:cut]
        yield path
        cut = path.rfind("/")
    if path != "/":
        yield "/"


class _PathIndex(Generic[T]):
    """Resolved paths, each with a value: the first added path that overlaps a given one, in
    O(depth). Keyed by the paths' text: a resolved path has one spelling, and string slicing
    and hashing cost a fraction of pathlib's for the 10 or so ancestors of each of thousands.

    Two paths overlap when they are equal or one contains the other. "First added" keeps the
    message a linear scan in insertion order would give.
    """

    def __init__(self) -> None:
        self._count = 0
        self._at: dict[str, tuple[int, T]] = {}
        """The first value added at exactly this path, with its insertion order."""
        self._below: dict[str, tuple[int, T]] = {}
        """The first value added strictly below this path (keyed by every ancestor)."""

    def add(self, path: Path, value: T) -> None:
        entry = (self._count, value)
        self._count += 1
        text = str(path)
        self._at.setdefault(text, entry)
        for parent in _ancestors(text):
            if parent in self._below:  # so are all its ancestors, by an earlier entry
                break
            self._below[parent] = entry

    def first_overlap(self, path: Path) -> T | None:
        # Equal to, or an ancestor of, `path`; or below it.
        text = str(path)
        hits = [self._at[p] for p in (text, *_ancestors(text)) if p in self._at]
        if text in self._below:
            hits.append(self._below[text])
        return min(hits, key=lambda hit: hit[0])[1] if hits else None


def _local_overlap(target: Path, protected: _PathIndex[_Protected]) -> str | None:
    item = protected.first_overlap(target)
    return None if item is None else f"overlaps {item.what} ({item.path.name})"


def _output_overlap(target: Path, claimed: _PathIndex[str]) -> str | None:
    other = claimed.first_overlap(target)
    return None if other is None else f"overlaps the output of `{other}`"


def _table_overlap(output: str, name: str, resources: Mapping[str, DesiredResource]) -> str | None:
    """Two resources writing to one BigQuery table would mix their rows."""
    for other, resource in sorted(resources.items()):
        if other >= name:
            break
        if resource.manifest.spec.output == output:
            return f"is also the output of `{other}`"
    return None


def _gcs_overlap(output: str, name: str, resources: Mapping[str, DesiredResource]) -> str | None:
    """gs:// prefixes overlap when one is a prefix of the other (objects are named by prefix)."""
    mine = output.rstrip("/") + "/"
    for other, resource in sorted(resources.items()):
        if other >= name:
            break
        theirs = resource.manifest.spec.output
        if not theirs.startswith("gs://"):
            continue
        theirs = theirs.rstrip("/") + "/"
        if mine.startswith(theirs) or theirs.startswith(mine):
            return f"overlaps the output of `{other}`"
    return None
