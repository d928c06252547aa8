"""Broken manifests and inputs: each yields its exact location and a helpful message, all at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.config import Project
from reconciler.errors import ManifestError, Severity
from reconciler.manifests.loader import load, load_desired

FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "project"
GOOD_LINE = '{"key": "%s", "request": {"contents": [{"parts": [{"text": "hello %s"}]}]}}\n'


def manifest(name: str, source: str = "file: data/in.jsonl", output: str | None = None) -> str:
    """A manifest's text; `source` is the YAML under `spec.source` (indented 4 spaces), and the
    output defaults to results/<name>.jsonl (one per resource: outputs may not overlap)."""
    output = output or f"results/{name}.jsonl"
    return (
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n"
        f"  name: {name}\nspec:\n  model: gemini-3-flash-preview\n  source:\n"
        f"    {source}\n  output: {output}\n"
    )


# case file (under fixtures/project/broken) -> [(location, message fragment, hint fragment)]
CASES: dict[str, list[tuple[str, str, str | None]]] = {
    "wrong-type": [
        (
            "broken/wrong-type.yaml:11:19",
            "`spec.policy.max_attempts`: Input should be a valid integer",
            None,
        )
    ],
    "missing-model": [
        ("broken/missing-model.yaml:6:3", "missing required field `model` in `spec`", None)
    ],
    "unknown-top": [
        (
            "broken/unknown-top.yaml:10:1",
            "unknown field `specs` in the top level",
            "did you mean `spec`?",
        )
    ],
    "unknown-nested": [
        ("broken/unknown-nested.yaml:6:3", "missing required field `output` in `spec`", None),
        (
            "broken/unknown-nested.yaml:9:3",
            "unknown field `outptu` in `spec`",
            "did you mean `output`?",
        ),
    ],
    "wrong-api-version": [
        (
            "broken/wrong-api-version.yaml:1:13",
            "`apiVersion`: Input should be 'reconciler/v1'",
            None,
        )
    ],
    "bad-name": [
        (
            "broken/bad-name.yaml:4:9",
            "'Eval_Summaries' is not a valid name: use lower-case letters",
            None,
        )
    ],
    "both-sources": [
        ("broken/both-sources.yaml:8:5", "source needs exactly one of `file` or `requests`", None)
    ],
    "duplicate-yaml-key": [
        ("broken/duplicate-yaml-key.yaml:7:3", "duplicate key `model` (first at line 6)", None)
    ],
    "syntax-error": [
        ("broken/syntax-error.yaml:7:9", "YAML syntax error: expected ',' or ']'", None)
    ],
    "alias-bomb": [
        ("broken/alias-bomb.yaml:2:4", "more than 100 alias uses", "aliases are allowed sparingly")
    ],
    "python-tag": [
        (
            "broken/python-tag.yaml:6:10",
            "YAML tag `tag:yaml.org,2002:python/object/apply:os.system` is not allowed",
            "remove the tag",
        )
    ],
    "custom-tag": [("broken/custom-tag.yaml:8:11", "YAML tag `!include` is not allowed", None)],
    "output-dotdot": [
        ("broken/output-dotdot.yaml:9:11", "`../../outside.jsonl` leaves the project root", None)
    ],
    "output-absolute": [("broken/output-absolute.yaml:9:11", "`/etc/passwd` is absolute", None)],
    "output-bad-gcs": [
        (
            "broken/output-bad-gcs.yaml:9:11",
            "not a Cloud Storage URL of the form gs://bucket/prefix/",
            None,
        )
    ],
    "missing-source-file": [
        (
            "broken/missing-source-file.yaml:8:11",
            "source file `data/nope.jsonl` does not exist",
            None,
        )
    ],
    "shards-too-big": [("broken/shards-too-big.yaml:11:16", "at most 2GB", None)],
    "not-a-mapping": [("broken/not-a-mapping.yaml:1:1", "a manifest must be a mapping", None)],
    "inline-typo": [
        (
            "broken/inline-typo.yaml:12:9",
            "unknown field `generationConfg` in GenerateContentRequest",
            "did you mean `generationConfig`?",
        )
    ],
    "inline-missing-media": [
        (
            "broken/inline-missing-media.yaml:13:25",
            "media file `images/dog.jpg` does not exist",
            None,
        )
    ],
    "inline-unknown-media-type": [
        (
            "broken/inline-unknown-media-type.yaml:12:34",
            "media file `images/notes.xyz` has an unknown or unsupported type",
            "set `mimeType`",
        )
    ],
    "inline-duplicate-keys": [
        (
            "broken/inline-duplicate-keys.yaml:11:14",
            "duplicate key 'same' (first used at broken/inline-duplicate-keys.yaml:9:9)",
            None,
        )
    ],
    "inline-system-role": [
        (
            "broken/inline-system-role.yaml:10:13",
            "`role` must be `user` or `model`, got 'system'",
            "use `systemInstruction`",
        )
    ],
    "jsonl-bad-json": [
        ("data/bad-json.jsonl:2:69", "invalid JSON: the line ends before the value does", None),
        ("data/bad-json.jsonl:4:13", "invalid JSON: expected ',' or '}'", None),
    ],
    "jsonl-duplicate-keys": [
        ("data/duplicate-keys.jsonl:3:1", "duplicate key 'a' (first used at line 1)", "unique")
    ],
    "jsonl-missing-key": [("data/missing-key.jsonl:2:1", "missing `key`", None)],
    "jsonl-misplaced-temperature": [
        (
            "data/misplaced-temperature.jsonl:1:70",
            "unknown field `temperature` in GenerateContentRequest",
            "did you mean generationConfig.temperature?",
        )
    ],
    "jsonl-two-data-fields": [
        (
            "data/two-data-fields.jsonl:2:40",
            "a part holds exactly one kind of data, got `inlineData`, `text`",
            "separate parts",
        )
    ],
    "jsonl-wrong-types": [
        ("data/wrong-types.jsonl:1:2", "`key` must be a non-empty string, got 7", None),
        (
            "data/wrong-types.jsonl:2:26",
            "`contents` must be a list of {role, parts} objects, got an object",
            None,
        ),
        ("data/wrong-types.jsonl:3:51", "`text` must be a string, got a number", None),
    ],
    "jsonl-bom": [
        ("data/bom.jsonl:1:1", "the file starts with a UTF-8 byte order mark", "without BOM")
    ],
    "jsonl-missing-media": [
        ("data/missing-media.jsonl:1:1", "media file `images/dog.jpg` does not exist", None)
    ],
    "jsonl-generation-config-typo": [
        (
            "data/generation-config-typo.jsonl:1:91",
            "unknown field `maxOutputToken` in generationConfig",
            "did you mean `maxOutputTokens`?",
        )
    ],
    "jsonl-embed-contents": [
        (
            "data/embed-contents.jsonl:1:30",
            "unknown field `contents` in EmbedContentRequest",
            "takes one `content`",
        )
    ],
    "jsonl-empty": [("data/empty.jsonl", "input file `data/empty.jsonl` holds no requests", None)],
}


def _errors(project: Project, *paths: Path) -> list[tuple[str, str, str | None]]:
    result = load(project, list(paths))
    return [
        (str(d.location), d.message, d.hint)
        for d in result.diagnostics
        if d.severity is Severity.ERROR
    ]


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_manifest_is_reported_at_its_exact_location(
    fixture_project: Project, case: str
) -> None:
    found = _errors(fixture_project, FIXTURE_PROJECT / "broken" / f"{case}.yaml")
    expected = CASES[case]
    assert [where for where, _, _ in found] == [where for where, _, _ in expected], found
    for (_, message, hint), (_, want_message, want_hint) in zip(found, expected, strict=True):
        assert want_message in message
        if want_hint is not None:
            assert hint is not None and want_hint in hint


def test_at_least_25_distinct_broken_inputs_are_covered() -> None:
    assert len(CASES) >= 25
    assert all((FIXTURE_PROJECT / "broken" / f"{case}.yaml").is_file() for case in CASES)


def test_every_problem_of_a_run_is_reported_together(fixture_project: Project) -> None:
    found = _errors(fixture_project, FIXTURE_PROJECT / "broken")
    files = {where.split(":")[0] for where, _, _ in found}
    # One run over the whole directory reports the problems of every broken file and input.
    assert len(found) >= len(CASES) + 1
    assert {"broken/wrong-type.yaml", "data/bad-json.jsonl", "broken/dup-name-b.yaml"} <= files


def test_several_errors_in_one_multi_document_file_are_all_reported(
    fixture_project: Project,
) -> None:
    found = _errors(fixture_project, FIXTURE_PROJECT / "broken" / "many-errors.yaml")
    assert [where for where, _, _ in found] == [
        "broken/many-errors.yaml:5:18",
        "broken/many-errors.yaml:8:9",
        "broken/many-errors.yaml:9:11",
        "broken/many-errors.yaml:13:7",
    ]
    assert "Input should be 'generate' or 'embed'" in found[1][1]
    assert "Input should be 'BatchJob'" in found[3][1]


def test_duplicate_names_across_files_name_both_locations(fixture_project: Project) -> None:
    broken = FIXTURE_PROJECT / "broken"
    found = _errors(fixture_project, broken / "dup-name-a.yaml", broken / "dup-name-b.yaml")
    assert found == [
        (
            "broken/dup-name-b.yaml:5:9",
            "duplicate metadata.name `twin`: also declared at broken/dup-name-a.yaml:4:9",
            "every manifest needs its own name; it is the resource's identity in the state",
        )
    ]


def test_load_desired_raises_one_error_carrying_every_diagnostic(fixture_project: Project) -> None:
    with pytest.raises(ManifestError) as caught:
        load_desired(fixture_project, [FIXTURE_PROJECT / "broken" / "many-errors.yaml"])
    assert len(caught.value.diagnostics) == 4
    assert caught.value.message == "4 error(s) in manifests"


def test_output_through_a_symlink_leaving_the_project_is_refused(
    tmp_project: Project, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_project.root / "results").symlink_to(outside, target_is_directory=True)
    (tmp_project.root / "data" / "in.jsonl").write_text(GOOD_LINE % ("a", "a"))
    (tmp_project.root / "manifests" / "m.yaml").write_text(
        manifest("linked", output="results/out.jsonl")
    )
    found = _errors(tmp_project, tmp_project.root / "manifests")
    assert len(found) == 1
    where, message, _ = found[0]
    assert where == "manifests/m.yaml:9:11"
    assert (
        message.startswith("output `results/out.jsonl` resolves to")
        and "outside the project root" in message
    )


def test_source_file_through_a_symlink_leaving_the_project_is_refused(
    tmp_project: Project, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-secret.jsonl"
    outside.write_text(GOOD_LINE % ("a", "a"))
    (tmp_project.root / "data" / "in.jsonl").symlink_to(outside)
    (tmp_project.root / "manifests" / "m.yaml").write_text(manifest("linked"))
    found = _errors(tmp_project, tmp_project.root / "manifests")
    assert [where for where, _, _ in found] == ["manifests/m.yaml:8:11"]
    assert "outside the project root" in found[0][1]


def test_oversize_inline_payload_is_refused_before_any_call(tmp_project: Project) -> None:
    # 25 aliases of a 1 MB text: a small YAML file whose requests are 25 MB of JSON.
    big = "x" * 1_000_000
    requests = "\n".join(
        f"      - contents: [{{parts: [{{text: {'&big ' + repr(big) if i == 0 else '*big'}}}]}}]"
        for i in range(25)
    )
    text = manifest("big-inline", source="requests:\n" + requests)
    (tmp_project.root / "manifests" / "m.yaml").write_text(text)
    found = _errors(tmp_project, tmp_project.root / "manifests")
    assert len(found) == 1
    where, message, hint = found[0]
    assert where == "manifests/m.yaml:9:7"
    assert "create call of 25,002," in message and "less than 20,000,000" in message
    assert hint == "move them to a JSONL file and use `source.file`"


def test_yaml_file_over_the_size_limit_is_refused_unread(tmp_project: Project) -> None:
    path = tmp_project.root / "manifests" / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(11 * 1024 * 1024)  # sparse: the check must not read it
    found = _errors(tmp_project, path)
    assert found == [
        (
            "manifests/huge.yaml",
            "file is 11,534,336 bytes, over the 10,485,760-byte limit for YAML; refusing to read it",
            "put large request sets in a JSONL file referenced by `source.file`",
        )
    ]


def test_missing_manifests_directory_is_an_error_not_an_empty_desired_state(
    tmp_project: Project,
) -> None:
    (tmp_project.root / "manifests").rmdir()
    result = load(tmp_project)
    assert result.desired is None
    assert result.errors[0].message == "manifests directory `manifests` does not exist"


def test_an_embedding_model_with_task_generate_is_a_warning_not_an_error(
    tmp_project: Project,
) -> None:
    (tmp_project.root / "data" / "in.jsonl").write_text(GOOD_LINE % ("a", "a"))
    text = manifest("embed-as-generate").replace("gemini-3-flash-preview", "gemini-embedding-001")
    (tmp_project.root / "manifests" / "m.yaml").write_text(text)
    result = load(tmp_project)
    assert result.desired is not None
    assert [(str(d.location), d.severity, d.hint) for d in result.diagnostics] == [
        ("manifests/m.yaml:6:10", Severity.WARNING, "did you mean task: embed?")
    ]


def test_errors_never_echo_values_of_the_environment(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "sk-very-secret-value")
    (tmp_project.root / "manifests" / "m.yaml").write_text(manifest("x", output="/abs/out.jsonl"))
    result = load(tmp_project)
    assert all("sk-very-secret-value" not in str(d) for d in result.diagnostics)
    assert os.environ["GEMINI_API_KEY"] == "sk-very-secret-value"


def test_a_priority_set_in_both_spellings_is_refused_naming_the_one_to_keep(
    tmp_project: Project,
) -> None:
    (tmp_project.root / "data" / "in.jsonl").write_text(GOOD_LINE % ("a", "a"))
    text = manifest("twice") + "  priority: 5\n  config:\n    priority: 3\n"
    (tmp_project.root / "manifests" / "m.yaml").write_text(text)
    found = _errors(tmp_project, tmp_project.root / "manifests")
    assert len(found) == 1
    where, message, _ = found[0]
    assert where.startswith("manifests/m.yaml:")
    assert "keep `spec.priority` and remove `spec.config.priority`" in message


def test_inline_requests_are_measured_as_the_sdk_sends_them(tmp_project: Project) -> None:
    """15 MB of UTF-8 text is 30 MB on the wire: the SDK escapes every non-ASCII character."""
    big = "語" * 1_000_000  # 3 bytes in UTF-8, 6 as \\u8a9e
    requests = "\n".join(
        f"      - contents: [{{parts: [{{text: {'&big ' + big if i == 0 else '*big'}}}]}}]"
        for i in range(5)
    )
    text = manifest("wide-inline", source="requests:\n" + requests)
    (tmp_project.root / "manifests" / "m.yaml").write_text(text, encoding="utf-8")
    found = _errors(tmp_project, tmp_project.root / "manifests")
    assert len(found) == 1
    where, message, _ = found[0]
    assert where == "manifests/m.yaml:9:7"
    assert "create call of 30,000," in message and "as the SDK sends it" in message
