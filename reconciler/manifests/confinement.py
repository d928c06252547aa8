"""Output confinement across a project: no output may touch what the project reads or keeps.

An output is written by apply (a JSONL file, or a folder of images and their index). If it
named the resource's own input, a manifest, the project file, the state or anything under
`.git/` or `.reconciler/`, a collect would overwrite it; if two outputs overlapped, one
resource's results would silently replace the other's while the plan said "no changes". So every
overlap is refused at `validate`, at the output's file:line, before anything runs.

Two paths overlap when they are equal or one contains the other (a folder output contains every
file under it). Paths are compared after resolving symlinks, as `confine` resolves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.config import Project
from reconciler.errors import Diagnostic
from reconciler.manifests.desired import DesiredResource
from reconciler.manifests.paths import confine
from reconciler.yamlsafe import JsonPath, YamlDocument

_OUTPUT: JsonPath = ("spec", "output")


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
) -> list[Diagnostic]:
    """One error per output that overlaps a protected path or another resource's output.

    Args:
        resources: the resources of this run, by name.
        documents: the YAML document each resource was read from (for the output's location).
        manifest_files: every manifest file discovered in this run.
    """
    protected = _project_paths(project, manifest_files)
    for name, resource in sorted(resources.items()):
        protected.extend(_inputs_of(project, name, resource))
    diagnostics: list[Diagnostic] = []
    claimed: dict[str, Path] = {}
    for name, resource in sorted(resources.items()):
        output = resource.manifest.spec.output
        where = documents[name].at(_OUTPUT)
        if output.startswith("gs://"):
            problem = _gcs_overlap(output, name, resources)
        else:
            target, _ = confine(project.root, output)
            if target is None:  # outside the root: already reported by the loader
                continue
            problem = _local_overlap(target, protected) or _output_overlap(target, claimed)
            claimed[name] = target
        if problem is not None:
            diagnostics.append(
                Diagnostic(
                    f"output `{output}` {problem}",
                    where,
                    hint="give every resource an output of its own, apart from inputs, "
                    "manifests, the state and .git/",
                )
            )
    return diagnostics


def _project_paths(project: Project, manifest_files: Sequence[Path]) -> list[_Protected]:
    root = project.root.resolve()
    paths = [
        _Protected(root / ".git", "the git repository (.git/)"),
        _Protected(root / ".reconciler", "the tool's working directory (.reconciler/)"),
        _Protected(project.path(project.config.manifests), "the manifests"),
    ]
    if project.config_path is not None:
        paths.append(_Protected(project.config_path.resolve(), "the project file"))
    paths.extend(_Protected(file.resolve(), "a manifest") for file in manifest_files)
    state = project.config.state
    if "://" not in state:
        state_path = project.path(state)
        for suffix, what in (("", "the state"), (".backup", "the state's backup"),
                             (".lock", "the state's lock")):  # fmt: skip
            paths.append(_Protected(state_path.with_name(state_path.name + suffix), what))
        paths.append(_Protected(state_path.parent / "blobs", "the state's blobs"))
    return paths


def _inputs_of(project: Project, name: str, resource: DesiredResource) -> list[_Protected]:
    spec = resource.manifest.spec
    relatives: list[tuple[str, str]] = []
    if spec.source.file is not None:
        relatives.append((spec.source.file, f"the input of `{name}`"))
    relatives.extend((media.path, f"a media file of `{name}`") for media in resource.media)
    found: list[_Protected] = []
    for relative, what in relatives:
        target, _ = confine(project.root, relative)
        if target is not None:
            found.append(_Protected(target, what))
    return found


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def _local_overlap(target: Path, protected: Sequence[_Protected]) -> str | None:
    for item in protected:
        if _overlaps(target, item.path):
            return f"overlaps {item.what} ({item.path.name})"
    return None


def _output_overlap(target: Path, claimed: Mapping[str, Path]) -> str | None:
    for other, path in claimed.items():
        if _overlaps(target, path):
            return f"overlaps the output of `{other}`"
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
