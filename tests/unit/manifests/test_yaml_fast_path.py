"""The fast YAML path (libyaml) agrees with the careful, position-keeping parser.

The fast path must accept exactly what the careful one accepts, give the same data, and leave
every diagnostic to the careful parser, so locations never depend on which parser ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifests.loader import load
from reconciler.yamlsafe import read_yaml_documents
from reconciler.yamlsafe.parsers import c_loader

FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "project"

needs_clib = pytest.mark.skipif(c_loader() is None, reason="ruamel.yaml.clib not installed")
YAML_FILES = sorted(p for p in FIXTURE_PROJECT.rglob("*") if p.suffix in (".yaml", ".yml"))


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(FIXTURE_PROJECT)))
def test_fast_and_careful_reads_agree(path: Path) -> None:
    fast_docs, fast_problems = read_yaml_documents(path, "f.yaml", fast=True)
    careful_docs, careful_problems = read_yaml_documents(path, "f.yaml")
    assert fast_problems == careful_problems
    assert [d.data for d in fast_docs] == [d.data for d in careful_docs]
    for fast, careful in zip(fast_docs, careful_docs, strict=True):
        # libyaml's marks agree with the careful parser's wherever the fast path is trusted.
        assert fast.values == careful.values
        assert fast.keys == careful.keys
        assert fast.start == careful.start


@needs_clib
def test_clean_file_is_not_parsed_carefully_until_a_location_is_asked(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("a:\n  b: [1, 'x']\n---\nc: true\n")
    documents, problems = read_yaml_documents(path, "m.yaml", fast=True)
    assert problems == []
    assert [d.data for d in documents] == [{"a": {"b": [1, "x"]}}, {"c": True}]
    assert all(d.careful is not None for d in documents)
    assert str(documents[1].at(("c",), key=True)) == "m.yaml:4:1"
    assert str(documents[0].at(("a", "b", 1))) == "m.yaml:2:10"


@needs_clib
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!python/object/apply:os.system [echo]\n", "YAML tag `tag:yaml.org,2002:python"),
        ("a: 1\na: 2\n", "duplicate key `a`"),
        ("a: [1,\n", "YAML syntax error"),
    ],
)
def test_fast_path_hands_problems_to_the_careful_parser(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    fast = read_yaml_documents(path, "m.yaml", fast=True)
    assert fast == read_yaml_documents(path, "m.yaml")
    assert fast[1] and fast[1][0].message.startswith(message)


@needs_clib
def test_aliases_and_version_directives_take_the_careful_path(tmp_path: Path) -> None:
    aliased = tmp_path / "a.yaml"
    aliased.write_text("a: &x {k: v}\nb: *x\n")
    documents, _ = read_yaml_documents(aliased, "a.yaml", fast=True)
    assert documents[0].data == {"a": {"k": "v"}, "b": {"k": "v"}}
    assert documents[0].careful is None
    versioned = tmp_path / "v.yaml"
    versioned.write_text("%YAML 1.1\n---\nflag: yes\n")
    documents, _ = read_yaml_documents(versioned, "v.yaml", fast=True)
    assert documents[0].data == {"flag": True}
    assert documents[0].careful is None


def test_size_limit_holds_on_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 200 + "\n")
    documents, problems = read_yaml_documents(path, "big.yaml", max_bytes=100, fast=True)
    assert documents == []
    assert "over the 100-byte limit" in problems[0].message


def test_duplicate_names_are_located_exactly_in_both_files(tmp_path: Path) -> None:
    from reconciler.config import load_project

    (tmp_path / "reconciler.yaml").write_text("endpoint: emulator\n")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    body = (
        "apiVersion: reconciler/v1\nkind: BatchJob\n{pad}metadata:\n  name:   same\nspec:\n"
        "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        "      - contents: [{{parts: [{{text: hi}}]}}]\n  output: out/{n}.jsonl\n"
    )
    (manifests / "a.yaml").write_text(body.format(pad="", n="a"))
    (manifests / "b.yaml").write_text(body.format(pad="# moved down\n", n="b"))
    result = load(load_project(tmp_path, environ={}))
    [problem] = result.errors
    assert str(problem.location) == "manifests/b.yaml:5:11"
    assert "also declared at manifests/a.yaml:4:11" in problem.message


SCALARS = [
    "", "~", "null", "Null", "NULL", "true", "True", "FALSE", "yes", "Yes", "no", "on", "off",
    "0", "-1", "+12", "0o17", "0x1F", "017", "1_000", "3.5", "-.5", "1e3", "6.8523015e+5",
    ".inf", "-.Inf", ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43",
    "12:30:00", "190:20:30", "=", "<<", "gemini-2.5-flash", "data/in.jsonl", "x", "1.2.3",
]  # fmt: skip


@needs_clib
@pytest.mark.parametrize("value", SCALARS)
def test_the_fast_loaders_tags_are_ruamels_for_every_plain_and_quoted_scalar(value: str) -> None:
    # The fast loader resolves plain scalars from one table built once (parsers.c_loader);
    # ruamel's own VersionedResolver, fresh as it is for each `YAML(typ="safe")` load, is the
    # spec -- asked twice, since its table grows as it is used.
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
    from ruamel.yaml.resolver import VersionedResolver

    loader_class = c_loader()
    assert loader_class is not None
    ours = loader_class("a: 1\n")
    theirs = VersionedResolver(version=None)
    try:
        for _ in range(2):
            for implicit in ((True, False), (False, True), (False, False)):
                assert ours.resolve(ScalarNode, value, implicit) == theirs.resolve(
                    ScalarNode, value, implicit
                ), implicit
        for kind in (MappingNode, SequenceNode):
            assert ours.resolve(kind, None, (False, False)) == theirs.resolve(
                kind, None, (False, False)
            )
    finally:
        ours.dispose()


@needs_clib
def test_a_file_of_every_scalar_kind_reads_alike_fast_and_careful(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("".join(f"k{i}: {v}\n" for i, v in enumerate(SCALARS) if v not in ("", "=")))
    fast_docs, fast_problems = read_yaml_documents(path, "m.yaml", fast=True)
    careful_docs, careful_problems = read_yaml_documents(path, "m.yaml")
    assert fast_problems == careful_problems  # `<<` is a merge key, refused by both
    assert [d.data for d in fast_docs] == [d.data for d in careful_docs]
