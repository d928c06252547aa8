"""No output may overwrite what the project reads or keeps, nor another resource's output."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.config import Project
from reconciler.errors import Severity
from reconciler.manifests.confinement import _PathIndex
from reconciler.manifests.loader import load

LINE = '{"key": "k1", "request": {"contents": [{"parts": [{"text": "hi"}]}]}}\n'


def write_manifest(project: Project, name: str, output: str, source: str = "data/in.jsonl") -> None:
    (project.root / "manifests" / f"{name}.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n"
        f"  name: {name}\nspec:\n  model: gemini-3-flash-preview\n  source:\n"
        f"    file: {source}\n  output: {output}\n"
    )


@pytest.fixture
def project(tmp_project: Project) -> Project:
    (tmp_project.root / "data" / "in.jsonl").write_text(LINE)
    (tmp_project.root / "data" / "other.jsonl").write_text(LINE)
    (tmp_project.root / ".git").mkdir()
    (tmp_project.root / ".git" / "config").write_text("[core]\n")
    return tmp_project


def output_errors(project: Project) -> list[str]:
    result = load(project)
    assert result.desired is None, "an overlapping output must make the run fail"
    return [
        f"{d.location}: {d.message}"
        for d in result.diagnostics
        if d.severity is Severity.ERROR and "output" in d.message
    ]


@pytest.mark.parametrize(
    ("output", "what"),
    [
        ("data/in.jsonl", "the input of `a`"),
        ("data/", "the input of `a`"),
        ("state/reconciler.state.json", "the state"),
        ("state/reconciler.state.json.backup", "the state's backup"),
        ("state/reconciler.state.json.lock", "the state's lock"),
        ("state/reconciler.state.json.journal", "the state's journal"),
        ("state/blobs/", "the state's blobs"),
        (".git/config", "the git repository"),
        (".reconciler/out.jsonl", "the tool's working directory"),
        ("manifests/a.yaml", "the manifests"),
        ("manifests/new.jsonl", "the manifests"),
        ("reconciler.yaml", "the project file"),
        ("./", "the git repository"),
    ],
)
def test_an_output_overlapping_a_protected_path_is_refused_at_its_line(
    project: Project, output: str, what: str
) -> None:
    write_manifest(project, "a", output)
    errors = output_errors(project)
    assert len(errors) == 1, errors
    assert errors[0].startswith("manifests/a.yaml:9:11")
    assert f"output `{output}` overlaps {what}" in errors[0]


def test_an_output_naming_another_resources_input_is_refused(project: Project) -> None:
    write_manifest(project, "a", "results/a.jsonl")
    write_manifest(project, "b", "data/in.jsonl", source="data/other.jsonl")
    errors = output_errors(project)
    assert errors == [
        "manifests/b.yaml:9:11: output `data/in.jsonl` overlaps the input of `a` (in.jsonl)"
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("results/same.jsonl", "results/same.jsonl"),
        ("results/", "results/b.jsonl"),
        ("results/images/", "results/images/nested/"),
        ("gs://bucket/out/", "gs://bucket/out/b/"),
        ("gs://bucket/out", "gs://bucket/out/"),
    ],
)
def test_two_resources_may_not_share_or_nest_their_outputs(
    project: Project, first: str, second: str
) -> None:
    write_manifest(project, "a", first)
    write_manifest(project, "b", second)
    errors = output_errors(project)
    assert len(errors) == 1, errors
    assert errors[0].startswith("manifests/b.yaml:9:11")
    assert "overlaps the output of `a`" in errors[0]


def test_a_symlink_into_a_protected_path_is_seen_through(project: Project) -> None:
    (project.root / "results").symlink_to(project.root / ".git")
    write_manifest(project, "a", "results/config")
    errors = output_errors(project)
    assert len(errors) == 1 and "the git repository" in errors[0]


def test_outputs_apart_from_everything_are_accepted(project: Project) -> None:
    write_manifest(project, "a", "results/a.jsonl")
    write_manifest(project, "b", "results/b/", source="data/other.jsonl")
    write_manifest(project, "c", "gs://bucket/c/")
    write_manifest(project, "d", "gs://bucket/cd/")
    result = load(project)
    assert result.desired is not None, result.diagnostics
    assert sorted(result.desired.resources) == ["a", "b", "c", "d"]


_SEGMENTS = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4)


@given(added=st.lists(_SEGMENTS, max_size=12), probe=_SEGMENTS)
def test_the_overlap_index_names_the_same_path_a_scan_in_order_would(
    added: list[list[str]], probe: list[str]
) -> None:
    """The index that keeps 10,000 manifests from O(N^2) comparisons answers as the plain scan."""
    root = Path("/project")
    paths = [root.joinpath(*parts) for parts in added]
    target = root.joinpath(*probe)
    index: _PathIndex[int] = _PathIndex()
    for position, path in enumerate(paths):
        index.add(path, position)
    scan = next(
        (
            position
            for position, path in enumerate(paths)
            if path == target or path in target.parents or target in path.parents
        ),
        None,
    )
    assert index.first_overlap(target) == scan
