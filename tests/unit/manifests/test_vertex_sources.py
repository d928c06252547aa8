"""`source.gcs` (Vertex only): where it is refused, and how an object's version becomes the
source digest the planner compares."""

from __future__ import annotations

from reconciler.config import Project
from reconciler.manifests.loader import load, resource_spec_hash
from reconciler.manifests.remote import RemoteObject, remote_uris, with_remote_sources

URI = "gs://team-bucket/inputs/eval.jsonl"


def _write(project: Project, endpoint: str, extra: str = "") -> None:
    (project.root / "reconciler.yaml").write_text(f"endpoint: {endpoint}\n")
    (project.root / "manifests/remote.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: remote\nspec:\n"
        f"  model: gemini-2.5-flash\n  source:\n    gcs: {URI}\n  output: results/r.jsonl\n{extra}"
    )


def _reloaded(project: Project) -> Project:
    from reconciler.config import load_project

    return load_project(project.root, environ={})


def test_a_gcs_source_is_refused_off_vertex_naming_the_manifest(tmp_project: Project) -> None:
    _write(tmp_project, "emulator")

    result = load(_reloaded(tmp_project))

    assert result.desired is None
    [problem] = result.diagnostics
    assert "`source.gcs` needs `endpoint: vertex`" in problem.message
    assert problem.location is not None and "manifests/remote.yaml" in str(problem.location)


def test_a_gcs_source_cannot_retry_failed_requests_alone(tmp_project: Project) -> None:
    _write(tmp_project, "vertex", "  policy:\n    retry_failed_requests: 1\n")
    result = load(_reloaded(tmp_project))
    assert result.desired is None
    assert "retry_failed_requests" in result.diagnostics[0].message


def test_the_object_version_is_the_source_digest_and_a_new_generation_changes_the_spec(
    tmp_project: Project,
) -> None:
    _write(tmp_project, "vertex")
    desired = load(_reloaded(tmp_project)).desired
    assert desired is not None and remote_uris(desired) == [URI]

    v1 = RemoteObject(URI, 120, 1, "crc", "md5")
    v2 = RemoteObject(URI, 120, 2, "crc", "md5")
    first, _ = with_remote_sources(desired, {URI: v1}, resource_spec_hash)
    again, _ = with_remote_sources(desired, {URI: v1}, resource_spec_hash)
    second, _ = with_remote_sources(desired, {URI: v2}, resource_spec_hash)

    spec = {d.resources["remote"].spec_hash for d in (first, again)}
    assert len(spec) == 1
    assert second.resources["remote"].spec_hash not in spec
    assert first.resources["remote"].source.bytes == 120


def test_a_missing_object_is_a_diagnostic_at_the_resource(tmp_project: Project) -> None:
    _write(tmp_project, "vertex")
    desired = load(_reloaded(tmp_project)).desired
    assert desired is not None

    resolved, problems = with_remote_sources(desired, {URI: None}, resource_spec_hash)

    assert "remote" not in resolved.resources
    assert URI in problems[0].message and "does not exist" in problems[0].message
