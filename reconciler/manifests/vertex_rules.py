"""What Vertex AI batch prediction refuses, found at `validate` rather than at apply.

With `endpoint: vertex` a manifest may use only what Vertex's `batchPredictionJobs` take for
Gemini models: generate requests from a JSONL file (staged to Cloud Storage) or a JSONL object
already in Cloud Storage (`source.gcs`) or a BigQuery table (`source.bigquery`), both read in
place (so their failed requests cannot be re-run alone); results go to a local path, a gs://
prefix or a BigQuery table (`output: bq://...`, where rows are appended, so their failed
requests cannot be re-run alone either). On any other endpoint `source.gcs`, `source.bigquery`
and bq:// outputs are refused. Vertex has no
inline requests, the SDK's batch embeddings are Developer API only, and Vertex jobs have no
batch priority. Each refusal names the manifest's file:line and the way out.
"""

from __future__ import annotations

from reconciler.errors import Diagnostic
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.model import BatchJobManifest, Task
from reconciler.yamlsafe import YamlDocument

ENDPOINT = "vertex"


def non_vertex_problems(manifest: BatchJobManifest, document: YamlDocument) -> list[Diagnostic]:
    """`source.gcs`, `source.bigquery` or a bq:// output on any endpoint but Vertex (the
    Developer API reads batch inputs only from its Files API and writes results only there)."""
    spec = manifest.spec
    found: list[Diagnostic] = []
    for field, value in (("gcs", spec.source.gcs), ("bigquery", spec.source.bigquery)):
        if value is not None:
            found.append(
                Diagnostic(
                    f"`source.{field}` needs `endpoint: vertex`: the Gemini Developer API "
                    "reads batch inputs only from its Files API",
                    document.at(("spec", "source", field), exact=False),
                    hint="use `source.file` with a local JSONL, or set `endpoint: vertex`",
                )
            )
    if is_bigquery(spec.output):
        found.append(
            Diagnostic(
                "a BigQuery `output` needs `endpoint: vertex`: the Gemini Developer API writes "
                "batch results only to its Files API",
                document.at(("spec", "output"), exact=False),
                hint="use a local path or a gs:// prefix, or set `endpoint: vertex`",
            )
        )
    return found


def vertex_problems(manifest: BatchJobManifest, document: YamlDocument) -> list[Diagnostic]:
    """Every part of `manifest` Vertex AI batch prediction cannot run."""
    spec = manifest.spec
    found: list[Diagnostic] = []
    if spec.source.requests is not None:
        found.append(
            Diagnostic(
                "`endpoint: vertex` has no inline requests: Vertex AI batch prediction reads "
                "a JSONL file from Cloud Storage",
                document.at(("spec", "source", "requests"), exact=False),
                hint="move the requests to a JSONL file and name it in `source.file` "
                "(apply stages it to `vertex.staging`)",
            )
        )
    if spec.task is Task.EMBED:
        found.append(
            Diagnostic(
                "`endpoint: vertex` runs no `task: embed` batch jobs: google-genai creates batch "
                "embeddings on the Gemini Developer API only",
                document.at(("spec", "task"), exact=False),
                hint="use `endpoint: gemini` for embedding jobs",
            )
        )
    if spec.config.priority is not None:
        found.append(
            Diagnostic(
                "`endpoint: vertex` has no batch priority: Vertex AI batch jobs have no such field",
                document.at(("spec", "config", "priority"), exact=False),
                hint="remove `config.priority`",
            )
        )
    in_place = next(
        (
            f"`source.{field}` is read in place"
            for field, value in (("gcs", spec.source.gcs), ("bigquery", spec.source.bigquery))
            if value is not None
        ),
        "a BigQuery `output` is only appended to" if is_bigquery(spec.output) else None,
    )
    if in_place is not None and spec.policy.retry_failed_requests:
        found.append(
            Diagnostic(
                f"{in_place}, so its failed requests cannot be run again alone "
                "(`policy.retry_failed_requests`)",
                document.at(("spec", "policy", "retry_failed_requests"), exact=False),
                hint="use `source.file` with a local or gs:// output, or remove "
                "retry_failed_requests",
            )
        )
    return found
