"""What Vertex AI batch prediction refuses, found at `validate` rather than at apply.

With `endpoint: vertex` a manifest may use only what Vertex's `batchPredictionJobs` take for
Gemini models: generate requests from a JSONL file (staged to Cloud Storage) or a JSONL object
already in Cloud Storage (`source.gcs`, read in place; its failed requests cannot be re-run
alone). On any other endpoint `source.gcs` is refused. Vertex has no
inline requests, the SDK's batch embeddings are Developer API only, and Vertex jobs have no
batch priority. Each refusal names the manifest's file:line and the way out.
"""

from __future__ import annotations

from reconciler.errors import Diagnostic
from reconciler.manifests.model import BatchJobManifest, Task
from reconciler.yamlsafe import YamlDocument

ENDPOINT = "vertex"


def gcs_source_problem(manifest: BatchJobManifest, document: YamlDocument) -> Diagnostic | None:
    """`source.gcs` on any endpoint but Vertex (the Developer API reads only its Files API)."""
    if manifest.spec.source.gcs is None:
        return None
    return Diagnostic(
        "`source.gcs` needs `endpoint: vertex`: the Gemini Developer API reads batch inputs "
        "only from its Files API",
        document.at(("spec", "source", "gcs"), exact=False),
        hint="use `source.file` with a local JSONL, or set `endpoint: vertex`",
    )


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
    if spec.source.gcs is not None and spec.policy.retry_failed_requests:
        found.append(
            Diagnostic(
                "`source.gcs` is read in place, so its failed requests cannot be run again alone "
                "(`policy.retry_failed_requests`)",
                document.at(("spec", "policy", "retry_failed_requests"), exact=False),
                hint="use `source.file` (apply stages it), or remove retry_failed_requests",
            )
        )
    return found
