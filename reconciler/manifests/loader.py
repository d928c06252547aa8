"""Manifest files -> Desired: discovery, safe YAML, model validation, source checks, hashing.

Every problem of a run is collected as a Diagnostic (file:line:col, message, hint) and reported
together; nothing here raises for bad input except `load_desired`, which raises one ManifestError
carrying all of them. Reads files; knows nothing of state or the service.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.config import Project
from reconciler.diagnostics import validation_diagnostics
from reconciler.errors import Diagnostic, ManifestError, Severity
from reconciler.manifests import vertex_rules
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.confinement import check_output_confinement
from reconciler.manifests.desired import Desired, DesiredResource, MediaRef, SourceDigest
from reconciler.manifests.discovery import discover
from reconciler.manifests.inline_size import LIMIT_BYTES as INLINE_LIMIT_BYTES
from reconciler.manifests.inline_size import inline_body_bytes
from reconciler.manifests.jsonl import JsonlScan, scan_jsonl
from reconciler.manifests.key_digests import HexDigests, keys_sha256
from reconciler.manifests.model import BatchJobManifest, Task
from reconciler.manifests.models_catalogue import KNOWN_MODELS, catalogue_problem
from reconciler.manifests.parse_cache import ParseCache
from reconciler.manifests.paths import ProjectPaths, resolve_media
from reconciler.manifests.remote import placeholder_digest
from reconciler.manifests.requests import (
    LINE_FIELDS,
    canonical_json,
    check_request,
    max_output_tokens,
    request_digest,
)
from reconciler.manifests.scan_cache import ScanCache
from reconciler.yamlsafe import JsonPath, YamlDocument, read_yaml_documents


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Everything one validation run found: the desired state if there were no errors."""

    desired: Desired | None
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[str, ...]
    """The manifest files read, as shown to the user."""

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)


def load_desired(project: Project, paths: Sequence[Path] | None = None) -> Desired:
    """Load, validate and hash every manifest (default: the project's `manifests` setting).

    Raises:
        ManifestError: carrying every diagnostic of the run, if any of them is an error.
    """
    result = load(project, paths)
    if result.desired is None:
        raise ManifestError(result.diagnostics)
    return result.desired


def validate_paths(project: Project, paths: Sequence[Path] | None = None) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) for the given manifest files or directories.

    Checks exactly what `load_desired` checks, without computing per-key request digests."""
    return list(load(project, paths, key_digests=False).diagnostics)


def load(
    project: Project, paths: Sequence[Path] | None = None, *, key_digests: bool = True
) -> LoadResult:
    """The whole run: never raises for bad input; `desired` is None when there are errors.

    `key_digests=False` skips the per-key digests of JSONL inputs (SourceDigest.key_digests
    empty, keys_sha256 ""): validation needs only the checks, the planner needs the digests."""
    where = ProjectPaths(project.root)
    output_root = project.path(project.config.output_root)
    cache = ParseCache(where.root)
    inputs = ScanCache(where.root)
    diagnostics: list[Diagnostic] = []
    files = discover(project, paths, diagnostics)
    resources: dict[str, DesiredResource] = {}
    declared: dict[str, YamlDocument] = {}
    shown_files: list[str] = []
    try:
        for file in files:
            shown = where.shown(file)  # discovered files are resolved
            shown_files.append(shown)
            documents, problems = read_yaml_documents(file, shown, fast=True, cache=cache)
            diagnostics.extend(problems)
            for document in documents:
                resource = _load_document(
                    project, where, output_root, document, diagnostics, key_digests, inputs
                )
                if resource is None:
                    continue
                first = declared.get(resource.name)
                if first is not None:
                    # Both locations exact: only these two files are parsed again, carefully.
                    name_path: JsonPath = ("metadata", "name")
                    diagnostics.append(
                        Diagnostic(
                            f"duplicate metadata.name `{resource.name}`: also declared at {first.at(name_path)}",
                            document.at(name_path),
                            hint="every manifest needs its own name; it is the resource's identity in the state",
                        )
                    )
                    continue
                resources[resource.name] = resource
                declared[resource.name] = document
    finally:
        inputs.save()
    cache.save()
    if files == [] and not diagnostics and paths:
        diagnostics.append(Diagnostic("no manifest files (*.yaml, *.yml) found in the given paths"))
    diagnostics.extend(check_output_confinement(project, resources, declared, files, where))
    diagnostics = _ordered(diagnostics)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        return LoadResult(None, tuple(diagnostics), tuple(shown_files))
    ordered = dict(sorted(resources.items()))
    return LoadResult(
        Desired(ordered, _manifests_sha256(ordered)), tuple(diagnostics), tuple(shown_files)
    )


def _load_document(
    project: Project,
    where: ProjectPaths,
    output_root: Path,
    document: YamlDocument,
    diagnostics: list[Diagnostic],
    key_digests: bool,
    inputs: ScanCache,
) -> DesiredResource | None:
    if not isinstance(document.data, dict):
        diagnostics.append(
            Diagnostic(
                "a manifest must be a mapping (apiVersion, kind, metadata, spec)", document.at(())
            )
        )
        return None
    try:
        manifest = BatchJobManifest.model_validate(document.data)
    except ValidationError as exc:
        diagnostics.extend(validation_diagnostics(exc, document, BatchJobManifest))
        return None
    before = len(_errors(diagnostics))
    spec = manifest.spec
    _check_output(project, where, output_root, document, spec.output, diagnostics)
    _check_model(project, document, manifest, diagnostics)
    on_vertex = project.config.endpoint.strip().lower() == vertex_rules.ENDPOINT
    vertex = project.config.vertex
    if on_vertex:
        diagnostics.extend(vertex_rules.vertex_problems(manifest, document))
        diagnostics.extend(
            vertex_rules.emulated_bigquery_problems(
                manifest, document, emulated=bool(vertex.base_url), bigquery_url=_bigquery(project)
            )
        )
    else:
        diagnostics.extend(vertex_rules.non_vertex_problems(manifest, document))
    source: SourceDigest | None
    media: tuple[MediaRef, ...]
    if spec.source.gcs is not None:
        # Read by Vertex in place: the digest comes from the object's version (remote.py).
        source, media = placeholder_digest(spec.source.gcs), ()
    elif spec.source.bigquery is not None:
        # Read by Vertex in place: the digest comes from the table's metadata (remote.py).
        source, media = placeholder_digest(spec.source.bigquery), ()
    elif spec.source.file is not None:
        source, media = _file_source(
            where, document, spec.source.file, spec.task, diagnostics, key_digests, inputs
        )
    else:
        source, media = _inline_source(where.root, document, manifest, diagnostics)
    if source is not None and on_vertex:
        local = spec.source.file is not None
        diagnostics.extend(
            vertex_rules.limit_problems(
                manifest,
                document,
                requests=source.request_count if local else 0,
                n_bytes=source.bytes if local else 0,
                location=_vertex_location(project),
            )
        )
    if source is None or len(_errors(diagnostics)) > before:
        return None
    resource = DesiredResource(
        name=manifest.metadata.name,
        manifest=manifest,
        location=document.at(("metadata", "name"), exact=False),
        source=source,
        media=media,
        spec_hash="",
        service_shards=vertex_rules.vertex_shards(spec.shards) if on_vertex else None,
    )
    return dataclasses.replace(resource, spec_hash=resource_spec_hash(resource))


def _vertex_location(project: Project) -> str | None:
    """The Vertex region as `live.vertex_target` resolves it (the file, else the environment)."""
    return project.config.vertex.location or os.environ.get("GOOGLE_CLOUD_LOCATION")


def _bigquery(project: Project) -> str | None:
    """The BigQuery emulator an emulated Vertex would use (`live.vertex_target`'s rule)."""
    return project.config.vertex.bigquery_url or os.environ.get("BIGQUERY_EMULATOR_HOST") or None


def resource_spec_hash(resource: DesiredResource) -> str:
    """The hash over a resource's replacing fields (`DesiredResource.spec_hash`)."""
    return hashlib.sha256(canonical_json(resource.replacing_fields())).hexdigest()


def _errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.ERROR]


def _check_output(
    project: Project,
    where: ProjectPaths,
    output_root: Path,
    document: YamlDocument,
    output: str,
    diagnostics: list[Diagnostic],
) -> None:
    """Local outputs must resolve (symlinks followed) inside the project's output root."""
    if output.startswith("gs://") or is_bigquery(output):
        return
    at: JsonPath = ("spec", "output")
    target, problem = where.confine(output)
    if target is None:
        diagnostics.append(
            Diagnostic(
                f"output {problem}",
                document.at(at),
                hint="outputs are written under the project root only",
            )
        )
        return
    # As `output_root in target.parents`, on text: pathlib's parents cost more than the check.
    inside = str(target).startswith(str(output_root).rstrip("/") + "/")
    if target != output_root and not inside:
        diagnostics.append(
            Diagnostic(
                f"output `{output}` is outside the configured output_root `{project.config.output_root}`",
                document.at(at),
            )
        )


def _check_model(
    project: Project,
    document: YamlDocument,
    manifest: BatchJobManifest,
    diagnostics: list[Diagnostic],
) -> None:
    spec = manifest.spec
    allowed = project.config.guardrails.allowed_models
    model = spec.model.removeprefix("models/")
    where: JsonPath = ("spec", "model")
    if allowed is not None and model not in allowed:
        diagnostics.append(
            Diagnostic(
                f"model `{model}` is not in guardrails.allowed_models of reconciler.yaml",
                document.at(where),
                hint="allowed: " + ", ".join(allowed),
            )
        )
    problem = catalogue_problem(spec.model, spec.task)
    if problem is not None and not (allowed is not None and model in allowed):
        diagnostics.append(
            Diagnostic(problem.message, document.at(where), problem.severity, hint=problem.hint)
        )
    if problem is not None and model not in KNOWN_MODELS:
        _check_task_by_name(document, model, spec.task, diagnostics)


def _check_task_by_name(
    document: YamlDocument, model: str, task: Task, diagnostics: list[Diagnostic]
) -> None:
    """For a model the catalogue does not know: a warning when its name and the task disagree."""
    is_embedding = "embedding" in model
    if is_embedding != (task is Task.EMBED):
        expected = "task: embed" if is_embedding else "task: generate (the default)"
        diagnostics.append(
            Diagnostic(
                f"model `{model}` looks like {'an embedding' if is_embedding else 'a generation'} model but the job has task: {task.value}",
                document.at(("spec", "model")),
                Severity.WARNING,
                hint=f"did you mean {expected}?",
            )
        )


def _file_source(
    where: ProjectPaths,
    document: YamlDocument,
    file: str,
    task: Task,
    diagnostics: list[Diagnostic],
    key_digests: bool,
    inputs: ScanCache,
) -> tuple[SourceDigest | None, tuple[MediaRef, ...]]:
    at: JsonPath = ("spec", "source", "file")
    target, problem = where.confine(file)
    if target is None:
        diagnostics.append(Diagnostic(f"source file {problem}", document.at(at)))
        return None, ()
    if not target.is_file():
        diagnostics.append(
            Diagnostic(
                f"source file `{file}` does not exist (paths are relative to the project root)",
                document.at(at),
            )
        )
        return None, ()
    # A clean scan of an unchanged small file is kept between runs (scan_cache).
    kept = inputs.lookup(target, task, key_digests)
    if isinstance(kept, JsonlScan):
        scan = kept
    else:
        display = where.shown(target)
        scan = scan_jsonl(target, task, where.root, display=display, digests=key_digests)
        if kept is not None:
            inputs.keep(target, task, key_digests, kept, scan)
    diagnostics.extend(scan.diagnostics)
    return (scan.digest if scan.ok else None), scan.media


def _inline_source(
    root: Path,
    document: YamlDocument,
    manifest: BatchJobManifest,
    diagnostics: list[Diagnostic],
) -> tuple[SourceDigest | None, tuple[MediaRef, ...]]:
    spec = manifest.spec
    requests: list[dict[str, Any]] = spec.source.requests or []
    task = spec.task
    base: JsonPath = ("spec", "source", "requests")
    digests: dict[str, bytes] = {}
    first_at: dict[str, JsonPath] = {}
    media: dict[str, MediaRef] = {}
    output_bound: int | None = 0
    sent: list[tuple[str, dict[str, Any]]] = []
    ok = True
    for index, item in enumerate(requests):
        item_path: JsonPath = (*base, index)
        named = "request" in item and set(item) <= LINE_FIELDS
        if named:
            key = item.get("key")
            request = item["request"]
            request_path: JsonPath = (*item_path, "request")
            if not isinstance(key, str) or not key:
                diagnostics.append(
                    Diagnostic(
                        "`key` must be a non-empty string when a request is named",
                        document.at((*item_path, "key")),
                    )
                )
                ok = False
                continue
        else:
            key, request, request_path = f"request-{index + 1}", item, item_path
        if key in first_at:
            diagnostics.append(
                Diagnostic(
                    f"duplicate key {key!r} (first used at {document.at(first_at[key])})",
                    document.at((*item_path, "key")),
                    hint="every key must be unique within the job",
                )
            )
            ok = False
            continue
        first_at[key] = item_path
        sent.append((key, request))
        problems, uses = check_request(request, task, request_path)
        for found in problems:
            diagnostics.append(
                Diagnostic(found.message, document.at(found.path, key=True), hint=found.hint)
            )
        ok = ok and not problems
        for use in uses:
            if use.path in media:
                continue
            resolved = resolve_media(root, use.path, use.mime_type, document.at(use.where))
            if isinstance(resolved, MediaRef):
                media[use.path] = resolved
            else:
                diagnostics.append(resolved)
                ok = False
        digests[key] = request_digest(request)
        limit = 0 if task is Task.EMBED else max_output_tokens(request)
        output_bound = None if output_bound is None or limit is None else output_bound + limit
    payload = canonical_json(requests)
    body = inline_body_bytes(
        sent,
        embed=task is Task.EMBED,
        display_name=spec.config.display_name or manifest.metadata.name,
        priority=spec.job_priority,
        media_mime={path: ref.mime_type for path, ref in media.items()},
    )
    if body >= INLINE_LIMIT_BYTES:
        diagnostics.append(
            Diagnostic(
                f"inline requests make a create call of {body:,} bytes as the SDK sends it "
                f"(each request wrapped with its key, in the batch envelope); the service "
                f"takes less than {INLINE_LIMIT_BYTES:,}",
                document.at(base),
                hint="move them to a JSONL file and use `source.file`",
            )
        )
        ok = False
    if not ok:
        return None, ()
    digest = SourceDigest(
        sha256=hashlib.sha256(payload).hexdigest(),
        bytes=len(payload),
        request_count=len(digests),
        keys_sha256=keys_sha256(digests),
        key_digests=HexDigests(digests),
        max_output_tokens=output_bound,
    )
    return digest, tuple(media[p] for p in sorted(media))


def _manifests_sha256(resources: dict[str, DesiredResource]) -> str:
    summary = {
        name: {"spec_hash": r.spec_hash, "in_place": r.in_place_fields()}
        for name, r in resources.items()
    }
    return hashlib.sha256(canonical_json(summary)).hexdigest()


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """File order, then position; stable, so diagnostics without a location keep their place."""

    def key(d: Diagnostic) -> tuple[str, int, int]:
        loc = d.location
        return (loc.path, loc.line, loc.column) if loc else ("", 0, 0)

    return sorted(diagnostics, key=key)
