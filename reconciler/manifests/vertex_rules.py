"""What Vertex AI batch prediction refuses, found at `validate` rather than at apply.

With `endpoint: vertex` a manifest may use only what Vertex's `batchPredictionJobs` take for
Gemini models: generate requests from a JSONL file (staged to Cloud Storage) or a JSONL object
already in Cloud Storage (`source.gcs`) or a BigQuery table (`source.bigquery`), both read in
place (so their failed requests cannot be re-run alone); results go to a local path, a gs://
prefix or a BigQuery table (`output: bq://...`, a new table the job creates, so its failed
requests cannot be re-run alone into it either). On any other endpoint `source.gcs`,
`source.bigquery` and bq:// outputs are refused. Vertex has no inline requests, the SDK's
batch embeddings are Developer API only, and Vertex jobs have no batch priority. Each refusal
names the manifest's file:line and the way out.

Vertex's batch limits are one table (`LIMITS`), each figure with its source: `validate` refuses
a manifest past one, the loader caps the default shard sizes at them
(`DesiredResource.service_shards`, so `plan` and `apply` split a large input into jobs Vertex
takes), and `with_remote_sources` checks what only the service knows (a `source.gcs` object's
size, a `source.bigquery` table's rows) when `plan` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from reconciler.errors import Diagnostic
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.model import BatchJobManifest, Shards, Task, parse_size
from reconciler.yamlsafe import YamlDocument

ENDPOINT = "vertex"

BATCH_LIMITS_SOURCE: Final = (
    "https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-gemini"
    ' ("Quotas and limits")'
)
"""Google's page on Gemini batch prediction (as of 2025-09-03), "Quotas and limits": a single
batch job may include up to 200,000 requests, and a Cloud Storage input file up to 1 GB; and,
under the global endpoint, batch prediction takes no BigQuery table as input or output."""
DESTINATION_SOURCE: Final = (
    "https://cloud.google.com/vertex-ai/generative-ai/docs/reference/java/latest/"
    "com.google.cloud.vertexai.api.BigQueryDestinationOrBuilder"
)
"""Vertex's API reference for `BigQueryDestination.outputUri`: "When the full table reference is
specified, the Dataset must exist and table must not exist"."""


@dataclass(frozen=True, slots=True)
class VertexLimit:
    """One figure Vertex AI batch prediction refuses a job past, and where it is published."""

    value: int
    what: str
    source: str

    def __str__(self) -> str:
        return f"{self.value:,} {self.what} ({self.source})"


MAX_REQUESTS: Final = VertexLimit(200_000, "requests in one batch job", BATCH_LIMITS_SOURCE)
MAX_INPUT_BYTES: Final = VertexLimit(
    1_000_000_000, "bytes in one Cloud Storage input file (1 GB)", BATCH_LIMITS_SOURCE
)
LIMITS: Final = (MAX_REQUESTS, MAX_INPUT_BYTES)
"""Every figure, for docs and tests; the rules below cite them by name."""
GLOBAL_LOCATION: Final = "global"
"""The location whose batch prediction takes no BigQuery table (BATCH_LIMITS_SOURCE)."""


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
        "a BigQuery `output` is one job's new table" if is_bigquery(spec.output) else None,
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


def vertex_shards(shards: Shards) -> Shards | None:
    """The shard sizes to split by on Vertex when a manifest leaves one unset and its default
    is past Vertex's limit (`shards.max_bytes` defaults to 1 GiB, past Vertex's 1 GB), so `plan`
    and `apply` make jobs Vertex takes; None when the manifest's own sizes fit. Sizes the
    manifest sets are checked by `limit_problems`, never changed."""
    update: dict[str, int] = {}
    if "max_requests" not in shards.model_fields_set and shards.max_requests > MAX_REQUESTS.value:
        update["max_requests"] = MAX_REQUESTS.value
    if "max_bytes" not in shards.model_fields_set and _bytes(shards) > MAX_INPUT_BYTES.value:
        update["max_bytes"] = MAX_INPUT_BYTES.value
    return shards.model_copy(update=update) if update else None


def limit_problems(
    manifest: BatchJobManifest,
    document: YamlDocument,
    *,
    requests: int,
    n_bytes: int,
    location: str | None,
) -> list[Diagnostic]:
    """What of `manifest` is past a Vertex limit (LIMITS) or a rule of its BigQuery output:
    explicit shard sizes Vertex would refuse, a BigQuery output its input would need several
    jobs for (each job makes its table, and Vertex refuses a table that exists), and BigQuery
    on the global location. `requests` and `n_bytes` are a local input's (0 for others)."""
    spec = manifest.spec
    found: list[Diagnostic] = []
    explicit = spec.shards.model_fields_set
    if "max_requests" in explicit and spec.shards.max_requests > MAX_REQUESTS.value:
        found.append(
            Diagnostic(
                f"`shards.max_requests` {spec.shards.max_requests:,} is past Vertex's limit of "
                f"{MAX_REQUESTS}",
                document.at(("spec", "shards", "max_requests"), exact=False),
                hint=f"set it to at most {MAX_REQUESTS.value:,}, or leave it out",
            )
        )
    if "max_bytes" in explicit and _bytes(spec.shards) > MAX_INPUT_BYTES.value:
        found.append(
            Diagnostic(
                f"`shards.max_bytes` {spec.shards.max_bytes} is past Vertex's limit of "
                f"{MAX_INPUT_BYTES}",
                document.at(("spec", "shards", "max_bytes"), exact=False),
                hint="set it to at most 1GB (e.g. `900MB`), or leave it out",
            )
        )
    if is_bigquery(spec.output):
        jobs = (vertex_shards(spec.shards) or spec.shards).jobs_for(requests, n_bytes)
        if jobs > 1:
            found.append(
                Diagnostic(
                    f"a BigQuery `output` takes the results of one job, and this input needs "
                    f"{jobs} ({requests:,} requests, {n_bytes:,} bytes; at most "
                    f"{min(spec.shards.max_requests, MAX_REQUESTS.value):,} requests and "
                    f"{min(_bytes(spec.shards), MAX_INPUT_BYTES.value):,} bytes a job): Vertex "
                    f"creates the table and refuses one that exists ({DESTINATION_SOURCE})",
                    document.at(("spec", "output"), exact=False),
                    hint="split the input into several resources, each with its own table, "
                    "or write to a gs:// prefix",
                )
            )
    uses_bigquery = spec.source.bigquery is not None or is_bigquery(spec.output)
    if uses_bigquery and (location or "").strip().lower() == GLOBAL_LOCATION:
        at = ("spec", "source", "bigquery") if spec.source.bigquery else ("spec", "output")
        found.append(
            Diagnostic(
                "Vertex AI batch prediction in location `global` takes no BigQuery table as "
                f"input or output ({BATCH_LIMITS_SOURCE})",
                document.at(at, exact=False),
                hint="set `vertex.location` to a region (e.g. us-central1) in the table's region",
            )
        )
    return found


def emulated_bigquery_problems(
    manifest: BatchJobManifest,
    document: YamlDocument,
    *,
    emulated: bool,
    bigquery_url: str | None,
) -> list[Diagnostic]:
    """A BigQuery source or output with an emulated Vertex (`vertex.base_url`) but no BigQuery
    emulator: an emulated job could reach no table, and Google's BigQuery never gets a call
    from beside an emulator (its credentials would go where `reconciler.yaml` points). No
    BigQuery emulator is started for the embedded one: the source table and the output's
    dataset must exist before the job, and one living for a single command would hold none."""
    spec = manifest.spec
    if not emulated or bigquery_url:
        return []
    found: list[Diagnostic] = []
    for at, uses in (
        (("spec", "source", "bigquery"), spec.source.bigquery is not None),
        (("spec", "output"), is_bigquery(spec.output)),
    ):
        if uses:
            found.append(
                Diagnostic(
                    "BigQuery tables with an emulated Vertex (`vertex.base_url`) need a BigQuery "
                    "emulator, and none is set",
                    document.at(at, exact=False),
                    hint="set `vertex.bigquery_url` in reconciler.yaml (or BIGQUERY_EMULATOR_HOST)"
                    " to a running one, e.g. `bqemulator start`; or use a gs:// source and output",
                )
            )
    return found


def existing_table_problem(table: str) -> tuple[str, str]:
    """What to say of a job about to write to the BigQuery table `table` that already exists:
    (message, hint). Vertex creates a job's output table and refuses one that exists."""
    return (
        f"its output {table} already exists, and Vertex AI writes a job's results only to a "
        f"new table (the dataset must exist and the table must not: {DESTINATION_SOURCE})",
        "drop the table once its rows are no longer needed (`bq rm -t "
        f"{table.removeprefix('bq://').replace('.', ':', 1)}`), or name another table in "
        "`output` (another table makes a new job)",
    )


def remote_problem(uri: str, *, size: int | None = None, rows: int | None = None) -> str | None:
    """Why Vertex would refuse a `source.gcs` object of `size` bytes or a `source.bigquery`
    table of `rows` rows (read in place, so they cannot be split into shards), or None."""
    if size is not None and size > MAX_INPUT_BYTES.value:
        return f"{uri} holds {size:,} bytes, past Vertex's limit of {MAX_INPUT_BYTES}"
    if rows is not None and rows > MAX_REQUESTS.value:
        return f"{uri} holds {rows:,} rows, past Vertex's limit of {MAX_REQUESTS}"
    return None


def _bytes(shards: Shards) -> int:
    try:
        return parse_size(shards.max_bytes)
    except ValueError:  # the model's validator reports it
        return 0
