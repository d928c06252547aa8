"""Each operation of the seed guide, through the CLI, at the smallest size that proves it: a
file-based job, inline requests, embeddings, a multimodal request and image generation (1-3
requests each, on the cheapest model that serves the operation). Results and state are checked,
then `destroy --prune` and the sweep remove everything the run made.

Against the real API: `make test-live` (GEMINI_API_KEY; a few cents at most, refused above
LIVE_BUDGET_USD). Against the emulator: part of every default test run.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import pytest

from reconciler.plan.cost import default_price_table
from tests.live.conftest import LIVE_BUDGET_USD, LiveProject

pytestmark = pytest.mark.live

# A 1x1 PNG, so the multimodal request uploads a real image of a few bytes.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
TEXT_MODEL = "gemini-2.5-flash-lite"
MAX_OUTPUT_TOKENS = 32
IMAGE_OUTPUT_TOKENS = 1290
"""What one generated image is billed as (Google's published figure for 1024x1024)."""


def _line(key: str, request: Mapping[str, object]) -> str:
    return json.dumps({"key": key, "request": request}) + "\n"


def _text(prompt: str) -> dict[str, object]:
    return {
        "contents": [{"parts": [{"text": prompt}]}],
        "generation_config": {"max_output_tokens": MAX_OUTPUT_TOKENS},
    }


def _manifest(project: LiveProject, name: str, model: str, body: str) -> None:
    project.write(
        f"manifests/{name}.yaml",
        f"apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: {name}\n"
        f"spec:\n  model: {model}\n{body}",
    )


def write_seed_guide_jobs(project: LiveProject) -> dict[str, int]:
    """The five operations; returns each resource's request count."""
    project.write("data/file.jsonl", _line("f1", _text("Say ok.")) + _line("f2", _text("Say hi.")))
    _manifest(
        project,
        "file-job",
        TEXT_MODEL,
        "  source:\n    file: data/file.jsonl\n  output: results/file-job.jsonl\n",
    )
    inline = json.dumps([_text("One word for sky."), _text("One word for sea.")])
    _manifest(
        project,
        "inline-job",
        TEXT_MODEL,
        f"  source:\n    requests: {inline}\n  output: results/inline-job.jsonl\n",
    )
    embed = {"content": {"parts": [{"text": "batch"}]}, "output_dimensionality": 8}
    project.write("data/embed.jsonl", _line("e1", embed))
    _manifest(
        project,
        "embed-job",
        "gemini-embedding-001",
        "  task: embed\n  source:\n    file: data/embed.jsonl\n  output: results/embed-job.jsonl\n",
    )
    project.write("data/pixel.png", PIXEL)
    picture = {
        "key": "m1",
        "request": {
            "contents": [
                {
                    "parts": [
                        {"text": "What colour is this pixel? One word."},
                        {"file_data": {"path": "data/pixel.png", "mime_type": "image/png"}},
                    ]
                }
            ],
            "generation_config": {"max_output_tokens": MAX_OUTPUT_TOKENS},
        },
    }
    _manifest(
        project,
        "multimodal-job",
        TEXT_MODEL,
        f"  source:\n    requests: [{json.dumps(picture)}]\n  output: results/multimodal-job.jsonl\n",
    )
    image = {
        "contents": [{"parts": [{"text": "A small red circle on white."}]}],
        "generation_config": {"response_modalities": ["IMAGE"]},
    }
    project.write("data/image.jsonl", _line("i1", image))
    _manifest(
        project,
        "image-job",
        "gemini-2.5-flash-image",
        "  source:\n    file: data/image.jsonl\n  output: results/image-job/\n",
    )
    return {"file-job": 2, "inline-job": 2, "embed-job": 1, "multimodal-job": 1, "image-job": 1}


def estimated_cost(plan: dict[str, object], outputs: dict[str, int]) -> float:
    """The plan's input estimate plus the most the outputs can cost: every text request at
    MAX_OUTPUT_TOKENS, every image at IMAGE_OUTPUT_TOKENS, at batch price."""
    table = default_price_table()
    summary = plan["summary"]
    assert isinstance(summary, dict)
    total = float(summary["estimated_cost_usd"])
    for model, tokens in outputs.items():
        price = table.price_for(model)
        assert price is not None, f"no price for {model}: cannot bound the live suite's cost"
        total += tokens * price.output_per_million / 1e6 * table.batch_discount
    return total


def refuse_over_budget(cost: float) -> None:
    if cost > LIVE_BUDGET_USD:
        pytest.fail(
            f"refusing to start: the live suite is estimated at ${cost:.4f}, "
            f"above its budget of ${LIVE_BUDGET_USD}",
            pytrace=False,
        )


def test_cost_gate_refuses_a_run_over_budget() -> None:
    with pytest.raises(pytest.fail.Exception, match="refusing to start"):
        refuse_over_budget(LIVE_BUDGET_USD + 0.01)
    refuse_over_budget(LIVE_BUDGET_USD)


def test_seed_guide_operations_apply_collect_and_clean_up(live_project: LiveProject) -> None:
    counts = write_seed_guide_jobs(live_project)
    live_project.ok("validate")
    plan = json.loads(live_project.ok("plan", "--format", "json"))
    outputs = {
        TEXT_MODEL: (counts["file-job"] + counts["inline-job"] + counts["multimodal-job"])
        * MAX_OUTPUT_TOKENS,
        "gemini-2.5-flash-image": counts["image-job"] * IMAGE_OUTPUT_TOKENS,
    }
    refuse_over_budget(estimated_cost(plan, outputs))

    timeout = "60m" if live_project.real else "2m"
    live_project.ok("apply", "--auto-approve", "--wait", "--timeout", timeout, timeout=4000)

    resources = live_project.state()["resources"]
    assert sorted(resources) == sorted(counts)
    for name, count in counts.items():
        record = resources[name]
        assert record["attempts"][-1]["state"] == "SUCCEEDED", name
        results = record["results"]
        assert (results["succeeded"], results.get("failed", 0)) == (count, 0), name
    for name in ("file-job", "inline-job", "embed-job", "multimodal-job"):
        lines = (live_project.root / "results" / f"{name}.jsonl").read_text().splitlines()
        assert len(lines) == counts[name], name
    pngs = list((live_project.root / "results" / "image-job").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes().startswith(b"\x89PNG")

    again = live_project.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    live_project.ok("destroy", "--auto-approve", "--prune")
    assert live_project.state()["resources"] == {}
