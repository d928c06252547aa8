"""Which manifest files a load reads, and in which order: every `*.yaml` / `*.yml` under the
manifests folder (symlinked files followed, symlinked folders and hidden entries not), each
once, in the order of their paths' parts."""

from __future__ import annotations

from pathlib import Path

from reconciler.config import Project
from reconciler.manifests.loader import load


def _manifest(path: Path, name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "apiVersion: reconciler/v1\nkind: BatchJob\n"
        f"metadata:\n  name: {name}\nspec:\n  model: gemini-2.5-flash\n"
        f"  source:\n    requests:\n      - contents: [{{parts: [{{text: hi}}]}}]\n"
        f"  output: results/{name}.jsonl\n"
    )


def test_discovery_reads_each_manifest_once_in_path_order_skipping_hidden_and_linked_folders(
    tmp_project: Project, tmp_path: Path
) -> None:
    manifests = tmp_project.root / "manifests"
    _manifest(manifests / "a" / "b.yaml", "in-folder")
    _manifest(manifests / "a-c.yml", "dash")
    _manifest(manifests / ".hidden" / "x.yaml", "hidden-folder")
    _manifest(manifests / "a" / ".x.yaml", "hidden-file")
    _manifest(manifests / "notes.txt", "not-a-manifest")
    elsewhere = tmp_path / "elsewhere"
    _manifest(elsewhere / "linked.yaml", "linked-file")
    _manifest(elsewhere / "folder" / "deep.yaml", "linked-folder")
    (manifests / "z-link.yaml").symlink_to(elsewhere / "linked.yaml")
    (manifests / "folder-link").symlink_to(elsewhere / "folder")
    (manifests / "a" / "again.yaml").symlink_to(manifests / "a" / "b.yaml")

    result = load(tmp_project, key_digests=False)

    # `a/b.yaml` sorts before `a-c.yml` by parts ("a" < "a-c.yml"), not by text ('/' > '-');
    # `a/again.yaml` is `a/b.yaml` again (one file, read once); the link to a file outside the
    # manifests folder is followed and shown by its real path (here inside the project).
    assert result.files == ("manifests/a/b.yaml", "manifests/a-c.yml", "elsewhere/linked.yaml")
