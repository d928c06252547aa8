"""Valid manifests become a Desired: identity, content hashes, inline keys, media, discovery."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reconciler.config import Project, load_project
from reconciler.manifests.loader import load, load_desired
from reconciler.manifests.requests import canonical_json, request_digest

REPO = Path(__file__).resolve().parents[3]
LINE = '{"key": "%s", "request": {"contents": [{"parts": [{"text": "hello %s"}]}]}}\n'


def _manifest(name: str, source: str = "file: data/in.jsonl", output: str | None = None) -> str:
    """A manifest's text (default output: results/<name>.jsonl, one per resource)."""
    output = output or f"results/{name}.jsonl"
    return (
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n"
        f"  name: {name}\nspec:\n  model: gemini-3-flash-preview\n  source:\n"
        f"    {source}\n  output: {output}\n"
    )


def test_repository_demo_manifests_load_one_resource_per_seed_operation() -> None:
    desired = load_desired(load_project(REPO, environ={}))
    assert sorted(desired.resources) == [
        "describe-image",
        "doc-embeddings",
        "eval-summaries",
        "image-generation",
        "poems-inline",
    ]
    embed = desired.resources["doc-embeddings"]
    assert embed.manifest.spec.task.value == "embed" and embed.source.request_count == 4
    image = desired.resources["describe-image"]
    assert [(m.path, m.mime_type) for m in image.media] == [("data/images/sunset.png", "image/png")]
    assert image.replacing_fields()["media"] == {"data/images/sunset.png": image.media[0].sha256}


def test_inline_requests_without_keys_are_keyed_in_order_from_one(tmp_project: Project) -> None:
    source = "requests:\n      - contents: [{parts: [{text: a}]}]\n      - contents: [{parts: [{text: b}]}]"
    (tmp_project.root / "manifests" / "m.yaml").write_text(_manifest("inline", source))
    resource = load_desired(tmp_project).resources["inline"]
    assert list(resource.source.key_digests) == ["request-1", "request-2"]
    requests = [
        {"contents": [{"parts": [{"text": "a"}]}]},
        {"contents": [{"parts": [{"text": "b"}]}]},
    ]
    assert resource.source.key_digests["request-1"] == request_digest(requests[0]).hex()
    assert len(resource.source.key_digests["request-2"]) == 16
    import hashlib

    assert resource.source.sha256 == hashlib.sha256(canonical_json(requests)).hexdigest()


def test_request_digest_ignores_layout_and_key_order_but_not_content(tmp_project: Project) -> None:
    data = tmp_project.root / "data" / "in.jsonl"
    (tmp_project.root / "manifests" / "m.yaml").write_text(_manifest("digests"))
    data.write_text(
        '{"key": "a", "request": {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": 0.5, "topK": 3}}}\n'
    )
    first = load_desired(tmp_project).resources["digests"]
    data.write_text(
        '{"request":{"generationConfig":{"topK":3,"temperature":0.5},"contents":[{"parts":[{"text":"x"}]}]},  "key":"a"}\n'
    )
    second = load_desired(tmp_project).resources["digests"]
    data.write_text(
        '{"key": "a", "request": {"contents": [{"parts": [{"text": "y"}]}], "generationConfig": {"temperature": 0.5, "topK": 3}}}\n'
    )
    third = load_desired(tmp_project).resources["digests"]
    assert first.source.key_digests == second.source.key_digests
    assert first.source.keys_sha256 == second.source.keys_sha256
    assert first.source.sha256 != second.source.sha256  # the bytes changed, so a new upload
    assert third.source.key_digests["a"] != first.source.key_digests["a"]


def test_spec_hash_follows_content_not_path_and_ignores_in_place_fields(
    tmp_project: Project,
) -> None:
    (tmp_project.root / "data" / "in.jsonl").write_text(LINE % ("a", "a"))
    shutil.copy(tmp_project.root / "data" / "in.jsonl", tmp_project.root / "data" / "moved.jsonl")
    manifest = tmp_project.root / "manifests" / "m.yaml"
    manifest.write_text(_manifest("hashing"))
    base = load_desired(tmp_project).resources["hashing"].spec_hash
    manifest.write_text(_manifest("hashing", "file: data/moved.jsonl", "results/elsewhere.jsonl"))
    assert load_desired(tmp_project).resources["hashing"].spec_hash == base
    manifest.write_text(_manifest("hashing").replace("gemini-3-flash-preview", "gemini-2.5-flash"))
    assert load_desired(tmp_project).resources["hashing"].spec_hash != base
    (tmp_project.root / "data" / "in.jsonl").write_text(LINE % ("a", "changed"))
    manifest.write_text(_manifest("hashing"))
    assert load_desired(tmp_project).resources["hashing"].spec_hash != base


def test_directories_are_searched_recursively_for_yaml_and_yml_and_multi_document_files(
    tmp_project: Project,
) -> None:
    (tmp_project.root / "data" / "in.jsonl").write_text(LINE % ("a", "a"))
    nested = tmp_project.root / "manifests" / "team" / "sub"
    nested.mkdir(parents=True)
    (nested / "one.yml").write_text(_manifest("one") + "---\n" + _manifest("two") + "---\n")
    (tmp_project.root / "manifests" / "three.yaml").write_text(_manifest("three"))
    (tmp_project.root / "manifests" / ".hidden").mkdir()
    (tmp_project.root / "manifests" / ".hidden" / "skip.yaml").write_text("not: [valid")
    (tmp_project.root / "manifests" / "notes.txt").write_text("ignored")
    result = load(tmp_project)
    assert result.diagnostics == ()
    assert result.desired is not None and sorted(result.desired.resources) == [
        "one",
        "three",
        "two",
    ]
    assert result.files == ("manifests/team/sub/one.yml", "manifests/three.yaml")
    assert str(result.desired.resources["two"].location) == "manifests/team/sub/one.yml:14:9"


def test_local_media_in_a_jsonl_input_is_recorded_once_with_its_hash(tmp_project: Project) -> None:
    image = tmp_project.root / "data" / "cat.png"
    shutil.copy(REPO / "data" / "images" / "sunset.png", image)
    part = {"fileData": {"path": "data/cat.png"}}
    lines = [
        {"key": k, "request": {"contents": [{"parts": [{"text": "Describe."}, part]}]}}
        for k in ("a", "b")
    ]
    (tmp_project.root / "data" / "in.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    (tmp_project.root / "manifests" / "m.yaml").write_text(_manifest("media"))
    resource = load_desired(tmp_project).resources["media"]
    assert [(m.path, m.mime_type, m.bytes) for m in resource.media] == [
        ("data/cat.png", "image/png", image.stat().st_size)
    ]
    assert resource.source.request_count == 2


def test_manifests_hash_changes_with_any_manifest_change(tmp_project: Project) -> None:
    (tmp_project.root / "data" / "in.jsonl").write_text(LINE % ("a", "a"))
    manifest = tmp_project.root / "manifests" / "m.yaml"
    manifest.write_text(_manifest("combined"))
    before = load_desired(tmp_project).manifests_sha256
    manifest.write_text(_manifest("combined", output="results/other.jsonl"))
    assert load_desired(tmp_project).manifests_sha256 != before


def test_validate_paths_checks_everything_but_skips_per_key_digests(tmp_project: Project) -> None:
    from reconciler.manifests.loader import validate_paths

    (tmp_project.root / "data" / "in.jsonl").write_text(LINE % ("a", "a") + LINE % ("a", "b"))
    (tmp_project.root / "manifests" / "m.yaml").write_text(_manifest("checked"))
    assert [str(d.location) for d in validate_paths(tmp_project)] == ["data/in.jsonl:2:1"]
    (tmp_project.root / "data" / "in.jsonl").write_text(LINE % ("a", "a"))
    assert validate_paths(tmp_project) == []
    fast = load(tmp_project, key_digests=False).desired
    assert fast is not None
    assert dict(fast.resources["checked"].source.key_digests) == {}
    assert fast.resources["checked"].source.keys_sha256 == ""
    assert dict(load_desired(tmp_project).resources["checked"].source.key_digests) != {}
