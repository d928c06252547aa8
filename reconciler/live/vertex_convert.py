"""Vertex AI values -> the tool's own: jobs as `LiveJob`, identity labels, prediction lines.

Pure (the SDK's `BatchJob` is only read). What it maps:

- A `BatchPredictionJob` becomes the same `LiveJob` a Developer API batch does: `JOB_STATE_*`
  through the shared state table (wire.py), the model as `models/<id>` (Vertex names it
  `publishers/google/models/<id>`), and the output as the job's `predictions.jsonl` under
  `outputInfo.gcsOutputDirectory` (or, for a BigQuery destination, its `bq://` table), which
  stands where a Developer API results file name does.
- The identity tag (tags.py) travels twice: in `displayName`, which Vertex echoes and the SDK
  returns, so the planner and the crash-safe adoption read it exactly as on the Developer API;
  and as labels (`rc-project`, `rc-resource`, `rc-spec`, `rc-attempt`), which the SDK does not
  return but Vertex filters on, so a snapshot lists only reconciler's jobs (`MANAGED_FILTER`)
  and people find them in the console and in billing reports.
- A Vertex prediction line (`request`, passed-through fields such as `key`, `response` or a
  non-empty `status`) becomes a Developer API result line (`key` + `response` or `error`), so
  collecting, merging and `results --print` do not know which service answered.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from google.genai import types

from reconciler.live.boundary import malformed
from reconciler.live.snapshot import LiveJob
from reconciler.live.tags import parse_tag
from reconciler.live.wire import job_state_from_service, strip_prefix
from reconciler.state.document import JobState

MANAGED_LABEL = "managed-by"
MANAGED_VALUE = "reconciler"
MANAGED_FILTER = f'labels.{MANAGED_LABEL}="{MANAGED_VALUE}"'
PREDICTIONS = "predictions.jsonl"
_FAILED_CODE = 13
"""A failed prediction carries only a message (`status`); INTERNAL stands for its code."""


def model_id(model: str) -> str:
    """`gemini-2.5-flash` from `models/...`, `publishers/google/models/...` or a bare id."""
    return model.rsplit("/", 1)[-1]


def labels_for(display_name: str) -> dict[str, str]:
    """Vertex labels carrying the identity tag of `display_name` (lowercase values of at most
    63 characters, as Vertex requires)."""
    labels = {MANAGED_LABEL: MANAGED_VALUE}
    tag = parse_tag(display_name)
    if tag is None:
        return labels
    labels["rc-resource"] = tag.resource[:63]
    labels["rc-spec"] = tag.spec_hash
    labels["rc-attempt"] = str(tag.attempt)
    if tag.project is not None:
        labels["rc-project"] = tag.project
    if tag.shard is not None:
        labels["rc-shard"] = f"{tag.shard}r{tag.rerun}"
    return labels


def live_job(job: types.BatchJob, call: str) -> LiveJob:
    if not job.name:
        malformed(call, "batch prediction job without a name")
    state = job_state_from_service(strip_prefix(job.state.name) if job.state else None)
    directory = job.output_info.gcs_output_directory if job.output_info else None
    table = job.dest.bigquery_uri if job.dest else None
    output = None
    if state is JobState.SUCCEEDED and table:
        # A BigQuery destination names one table (the SDK keeps `outputInfo`'s table name but
        # drops its dataset): the job's rows are there.
        output = table
    elif state is JobState.SUCCEEDED and directory:
        output = f"{directory.rstrip('/')}/{PREDICTIONS}"
    return LiveJob(
        name=job.name,
        display_name=job.display_name,
        state=state,
        model=f"models/{model_id(job.model)}" if job.model else None,
        create_time=job.create_time,
        update_time=job.update_time,
        end_time=job.end_time,
        output_file=output,
    )


def result_line(prediction: dict[str, Any], number: int) -> dict[str, Any]:
    """A Developer API result line for one Vertex prediction line (`number` counts from 1 and
    stands in for a missing key)."""
    key = prediction.get("key")
    line: dict[str, Any] = {"key": key if isinstance(key, str) else str(number)}
    status = prediction.get("status")
    response = prediction.get("response")
    if status or not isinstance(response, dict):
        message = status if isinstance(status, str) and status else "no response"
        line["error"] = {"code": _FAILED_CODE, "message": message}
    else:
        line["response"] = response
    return line


def rewrite_predictions(raw: Path, dest: Path) -> tuple[str, int]:
    """Vertex prediction lines -> Developer API result lines in `dest`; (sha256, bytes)."""
    sha = hashlib.sha256()
    size = 0
    number = 0
    with raw.open("rb") as source, dest.open("wb") as sink:
        for text in source:
            if not text.strip():
                continue
            number += 1
            try:
                prediction = json.loads(text)
            except (ValueError, RecursionError):  # not JSON, too deep, or an int too long
                prediction = {"status": f"prediction line {number} is not JSON"}
            line = result_line(prediction if isinstance(prediction, dict) else {}, number)
            data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            sink.write(data)
            sha.update(data)
            size += len(data)
    return sha.hexdigest(), size
