"""Actual cost end to end: after `apply --wait`, `status` shows what the results' usageMetadata
cost at batch price beside the estimate, and `reconciler cost` adds it up by model and label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.plan.cost import default_price_table
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request


def _usage_cost(results: Path, model: str) -> float:
    """Sum over the result lines of usageMetadata x the shipped batch prices, by hand."""
    price = default_price_table().price_for(model)
    assert price is not None and price.cached_input_per_million is not None
    total = 0.0
    for line in results.read_text().splitlines():
        usage = json.loads(line)["response"]["usageMetadata"]
        cached = usage.get("cachedContentTokenCount", 0)
        total += (
            (usage["promptTokenCount"] - cached) * price.input_per_million
            + cached * price.cached_input_per_million
            + (usage["candidatesTokenCount"] + usage.get("thoughtsTokenCount", 0))
            * price.output_per_million
        )
    return total / 1e6 * default_price_table().batch_discount


def _apply_two_teams(project: Project) -> Project:
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"q{i}", "request": text_request(f"question {i}")} for i in range(4)]),
    )
    project.manifest(
        "eval",
        file_job_spec("data/eval.jsonl", "results/eval.jsonl"),
        labels="  labels:\n    team: search\n",
    )
    project.manifest(
        "lite",
        "  model: gemini-2.5-flash-lite\n  source:\n    requests:\n"
        "      - contents: [{parts: [{text: 'hello'}]}]\n"
        "        cachedContent: cachedContents/shared-prefix\n"
        "  output: results/lite.jsonl\n",
        labels="  labels:\n    team: ads\n",
    )
    project.commit()
    applied = project.run("apply", "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stderr
    return project


def test_status_and_cost_show_the_results_usage_at_batch_price(project: Project) -> None:
    # One apply for both commands: each e2e apply costs seconds.
    applied = _apply_two_teams(project)
    status = applied.run("status", "--format", "json")
    assert status.returncode == 0, status.stderr
    rows = {row["resource"]: row for row in json.loads(status.stdout)["resources"]}

    expected = {
        "eval": _usage_cost(applied.root / "results/eval.jsonl", "gemini-2.5-flash"),
        "lite": _usage_cost(applied.root / "results/lite.jsonl", "gemini-2.5-flash-lite"),
    }
    for name, cost in expected.items():
        assert rows[name]["actual_cost_usd"] == pytest.approx(cost)
        assert rows[name]["estimated_cost_usd"] > 0
    assert rows["eval"]["actual_usage"]["thinking"] > 0
    assert rows["lite"]["actual_usage"]["cached"] == 1024

    text = applied.run("status").stdout
    assert "COST (ACTUAL / EST.)" in text
    assert "lite: " in text and "(1,024 cached)" in text

    shown = applied.run("cost", "--by", "model", "--by", "label:team", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    by_model = {g["key"]: g for g in document["groupings"]["model"]}
    by_team = {g["key"]: g for g in document["groupings"]["label:team"]}
    assert set(by_model) == {"gemini-2.5-flash", "gemini-2.5-flash-lite"}
    assert by_team["search"]["cost_usd"] == pytest.approx(by_model["gemini-2.5-flash"]["cost_usd"])
    assert by_team["ads"]["usage"]["cached"] == 1024
    assert document["total"]["cost_usd"] == pytest.approx(
        by_team["search"]["cost_usd"] + by_team["ads"]["cost_usd"]
    )

    by_label = applied.run("cost", "--by", "label:team")
    assert by_label.returncode == 0, by_label.stderr
    assert by_label.stdout.startswith("LABEL TEAM")
    assert "Total: $" in by_label.stdout and "2 job(s)" in by_label.stdout

    refused = applied.run("cost", "--by", "team")
    assert refused.returncode == 1
    assert "label:<name>" in refused.stderr
