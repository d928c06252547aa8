"""BigQuery on Vertex, the pure parts: what the SDK sends for bq:// sources and destinations, a
BigQuery-destination job as a LiveJob, and results-table rows as result lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.genai import _transformers, types

from reconciler.live.vertex_bigquery import result_line, write_result_lines
from reconciler.live.vertex_convert import live_job

TABLE = "bq://my-project.evals.answers"


def test_the_sdk_maps_bq_uris_to_bigquery_source_and_destination_as_the_adapter_relies_on() -> None:
    # The adapter passes the manifest's URIs as `src` and `config.dest` strings: the SDK must
    # keep making BigQuery configs of them (the SDK wins over the docs).
    source = _transformers.t_batch_job_source(None, "bq://my-project.evals.prompts")
    destination = _transformers.t_batch_job_destination(TABLE)

    assert (source.format, source.bigquery_uri) == ("bigquery", "bq://my-project.evals.prompts")
    assert (destination.format, destination.bigquery_uri) == ("bigquery", TABLE)


def test_a_succeeded_job_with_a_bigquery_destination_points_at_its_table() -> None:
    job = types.BatchJob(
        name="projects/p/locations/l/batchPredictionJobs/1",
        state=types.JobState.JOB_STATE_SUCCEEDED,
        model="publishers/google/models/gemini-2.5-flash",
        dest=types.BatchJobDestination(format="bigquery", bigquery_uri=TABLE),
        output_info=types.BatchJobOutputInfo(bigquery_output_table="answers"),
    )

    assert live_job(job, "get").output_file == TABLE


def test_a_running_job_with_a_bigquery_destination_has_no_output_yet() -> None:
    job = types.BatchJob(
        name="projects/p/locations/l/batchPredictionJobs/1",
        state=types.JobState.JOB_STATE_RUNNING,
        dest=types.BatchJobDestination(format="bigquery", bigquery_uri=TABLE),
    )

    assert live_job(job, "get").output_file is None


def test_rows_become_result_lines_keyed_by_their_key_column_or_their_position() -> None:
    answered = {"key": "k1", "request": {}, "response": {"candidates": []}, "status": ""}
    failed = {"key": "k2", "request": {}, "response": None, "status": "Internal error."}
    unkeyed: dict[str, Any] = {"request": {}, "response": {"candidates": []}, "status": None}

    assert result_line(answered, 1) == {"key": "k1", "response": {"candidates": []}}
    assert result_line(failed, 2) == {
        "key": "k2",
        "error": {"code": 13, "message": "Internal error."},
    }
    assert result_line(unkeyed, 3) == {"key": "3", "response": {"candidates": []}}
    assert result_line({"key": 7, "status": ""}, 4)["error"]["message"] == "no response"


def test_written_result_lines_are_hashed_and_measured_as_written(tmp_path: Path) -> None:
    dest = tmp_path / "rows.jsonl"
    rows: list[dict[str, Any]] = [{"key": "a", "response": {"x": 1}}, {"key": "b", "status": "bad"}]

    sha256, size = write_result_lines(rows, dest)

    import hashlib

    data = dest.read_bytes()
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert [json.loads(line)["key"] for line in data.splitlines()] == ["a", "b"]


def test_a_bigquery_that_refuses_the_credentials_is_reported_as_permission_denied() -> None:
    """bqemulator has no access control, so Google's 403 answer comes from a stand-in server
    that answers every call as BigQuery does for credentials without access."""
    import http.server
    import threading

    from reconciler.live.vertex_bigquery import Access, BigQuery

    class Forbidden(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"error": {"code": 403, "message": "Access Denied: Table p: permission denied"}}
            ).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        bigquery = BigQuery(f"http://127.0.0.1:{server.server_address[1]}")
        source = bigquery.check_source("bq://my-project.evals.prompts")
        output = bigquery.check_output("bq://my-project.evals.answers")
    finally:
        server.shutdown()
        thread.join()

    assert (source.access, output.access) == (Access.DENIED, Access.DENIED)
    assert "BigQuery Data Viewer" in source.detail and "service agent" in source.detail
    assert "BigQuery Data Editor on the dataset" in output.detail
    assert not source.ok and not output.ok
