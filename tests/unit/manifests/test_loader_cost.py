"""Loading costs a small, fixed amount per manifest: thousands of manifests load in seconds.

Each test counts work that once grew with the number of manifests (the root resolved ten times
per manifest, every clean file parsed a second time by the careful parser) on a real project.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import yamlsafe
from reconciler.config import Project
from reconciler.manifests.loader import load
from reconciler.yamlsafe import parsers
from reconciler.yamlsafe.read import pack

MANIFESTS = 12


def write_manifests(project: Project, count: int = MANIFESTS) -> None:
    for i in range(count):
        line = {"key": "k", "request": {"contents": [{"parts": [{"text": str(i)}]}]}}
        (project.root / "data" / f"in{i}.jsonl").write_text(json.dumps(line) + "\n")
        (project.root / "manifests" / f"m{i}.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: BatchJob\n"
            f"metadata:\n  name: m{i}\nspec:\n  model: gemini-2.5-flash\n"
            f"  source:\n    file: data/in{i}.jsonl\n  output: results/m{i}.jsonl\n"
        )


def test_each_manifest_resolves_only_its_own_paths(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root once per run; per manifest its file, its output and its input."""
    write_manifests(tmp_project)
    calls = 0
    real = Path.resolve

    def counting(self: Path, strict: bool = False) -> Path:
        nonlocal calls
        calls += 1
        return real(self, strict)

    monkeypatch.setattr(Path, "resolve", counting)
    result = load(tmp_project)
    assert result.desired is not None and len(result.desired.resources) == MANIFESTS
    assert calls <= 3 * MANIFESTS + 10


def test_clean_manifests_are_never_parsed_by_the_careful_parser(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The position-keeping parser is for diagnostics; a clean project needs none."""
    write_manifests(tmp_project)
    careful = 0
    real = parsers.careful_documents

    def counting(text: str, shown: str) -> tuple[list[yamlsafe.YamlDocument], list[object]]:
        nonlocal careful
        careful += 1
        return real(text, shown)  # type: ignore[return-value]

    monkeypatch.setattr(parsers, "careful_documents", counting)
    result = load(tmp_project)
    assert result.desired is not None and len(result.desired.resources) == MANIFESTS
    assert careful == 0


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the fast parser is given, in order (the real parser still parses it)."""
    parsed: list[str] = []
    real = parsers.fast_documents

    def counting(text: str, shown: str) -> list[yamlsafe.YamlDocument] | None:
        parsed.append(shown)
        return real(text, shown)

    monkeypatch.setattr(parsers, "fast_documents", counting)
    return parsed


def test_an_unchanged_manifest_is_parsed_once_across_runs(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifests(tmp_project)
    first = load(tmp_project)
    parsed = count_parses(monkeypatch)
    second = load(tmp_project)
    assert parsed == []
    assert second.desired == first.desired
    assert second.desired is not None


def test_an_edited_manifest_is_parsed_again_and_its_new_content_used(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifests(tmp_project)
    load(tmp_project)
    manifest = tmp_project.root / "manifests" / "m3.yaml"
    manifest.write_text(manifest.read_text().replace("results/m3.jsonl", "results/new.jsonl"))
    parsed = count_parses(monkeypatch)
    result = load(tmp_project)
    assert parsed == ["manifests/m3.yaml"]
    assert result.desired is not None
    assert result.desired.resources["m3"].manifest.spec.output == "results/new.jsonl"


def test_diagnostics_of_cached_manifests_keep_their_exact_file_line_and_column(
    tmp_project: Project, user_cache: Path
) -> None:
    write_manifests(tmp_project, 2)
    second = tmp_project.root / "manifests" / "m1.yaml"
    load(tmp_project)  # both clean: both cached
    second.write_text(second.read_text().replace("results/m1.jsonl", "results/m0.jsonl"))
    fresh = [str(d) for d in load(tmp_project).diagnostics]
    cached = [str(d) for d in load(tmp_project).diagnostics]
    assert cached == fresh
    assert any("manifests/m1.yaml:9:11" in line and "overlaps" in line for line in cached)


def test_a_corrupt_cache_is_ignored(tmp_project: Project, user_cache: Path) -> None:
    from reconciler.manifests.parse_cache import CACHE_FILE

    write_manifests(tmp_project)
    expected = load(tmp_project).desired
    (tmp_project.root / CACHE_FILE).write_bytes(b"\x00not a cache")
    assert load(tmp_project).desired == expected


def test_a_cache_this_user_did_not_write_is_not_trusted(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache committed to the repository must not make apply run other than the manifests."""
    import hashlib

    from reconciler.manifests.parse_cache import ParseCache

    write_manifests(tmp_project)
    manifest = tmp_project.root / "manifests" / "m3.yaml"
    real_text = manifest.read_text()
    forged_path = tmp_project.root / "forged.yaml"
    forged_path.write_text(real_text.replace("results/m3.jsonl", "results/forged.jsonl"))
    forged, _ = yamlsafe.read_yaml_documents(forged_path, "forged.yaml", fast=True)
    packed = pack(forged)
    assert packed is not None
    forged_path.unlink()
    # A cache entry for the real text that holds the forged documents, signed by its writer.
    writer = ParseCache(tmp_project.root)
    digest = hashlib.sha256(real_text.encode()).hexdigest()
    assert writer.get(digest) is None
    writer.put(digest, packed)
    writer.save()
    as_writer = load(tmp_project).desired
    assert as_writer is not None  # its writer trusts it (so the entry is well-formed) ...
    assert as_writer.resources["m3"].manifest.spec.output == "results/forged.jsonl"
    # ... another user, finding it in a checkout, does not.
    monkeypatch.setenv("XDG_CACHE_HOME", str(user_cache.parent / "another-user"))
    result = load(tmp_project)
    assert result.desired is not None
    assert result.desired.resources["m3"].manifest.spec.output == "results/m3.jsonl"


@pytest.mark.hostile_input
def test_a_truncated_or_bit_flipped_cache_is_ignored(
    tmp_project: Project, user_cache: Path
) -> None:
    from reconciler.manifests.parse_cache import CACHE_FILE

    write_manifests(tmp_project)
    expected = load(tmp_project).desired
    whole = (tmp_project.root / CACHE_FILE).read_bytes()
    flipped = bytearray(whole)
    flipped[-1] ^= 0x01
    for damaged in (whole[: len(whole) // 2], bytes(flipped), b"", whole[:31]):
        (tmp_project.root / CACHE_FILE).write_bytes(damaged)
        assert load(tmp_project).desired == expected


@pytest.mark.hostile_input
@pytest.mark.parametrize("key", [b"", b"short", b"x" * 64], ids=["empty", "short", "long"])
def test_a_key_file_of_the_wrong_size_disables_the_cache_without_an_error(
    tmp_project: Project, user_cache: Path, key: bytes
) -> None:
    from reconciler.manifests.parse_cache import _key_file

    _key_file().parent.mkdir(parents=True)
    _key_file().write_bytes(key)
    write_manifests(tmp_project)
    first = load(tmp_project)
    assert first.desired is not None and load(tmp_project).desired == first.desired
    assert _key_file().read_bytes() == key  # another user's key is never overwritten


@pytest.mark.hostile_input
def test_symlinks_planted_in_the_checkout_never_make_the_cache_write_outside_it(
    tmp_project: Project, user_cache: Path, tmp_path: Path
) -> None:
    """A pull request can commit `.reconciler/cache/<temporary name>` as a link to a file of
    the user's, or `.reconciler` itself as a link to a folder elsewhere."""
    import os

    from reconciler.manifests.parse_cache import CACHE_FILE

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    cache_dir = tmp_project.root / CACHE_FILE.parent
    cache_dir.mkdir(parents=True)
    for pid in {os.getpid(), *range(1, 200)}:  # the names writers used: a pid
        (cache_dir / f".{CACHE_FILE.name}.{pid}.tmp").symlink_to(victim)
    write_manifests(tmp_project)
    load(tmp_project)
    assert victim.read_text() == "precious"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for entry in sorted((tmp_project.root / ".reconciler").rglob("*"), reverse=True):
        entry.unlink() if not entry.is_dir() or entry.is_symlink() else entry.rmdir()
    (tmp_project.root / ".reconciler").rmdir()
    (tmp_project.root / ".reconciler").symlink_to(elsewhere)
    load(tmp_project)
    assert not any(p.is_file() for p in elsewhere.rglob("*"))
