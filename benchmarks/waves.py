"""N resources past a concurrent-job cap: one `apply --wait` runs them all in waves.

    .venv/bin/python -m benchmarks.waves --resources 30 --cap 5 --job-seconds 2
    .venv/bin/python -m benchmarks.waves --resources 30 --cap 5 --by tokens

With `--by tokens` the cap is an enqueued-token limit instead (`limits.enqueued_tokens`, the
emulator's `--max-enqueued-tokens`), sized so that `cap` of the equal jobs fit at once.

The emulator (a separate process) refuses creates past `--max-concurrent-jobs` with 429, as the
service does; the project declares the same limit (`guardrails.max_concurrent_jobs`). The tool
is timed end to end (CLI subprocess: plan, creates, polls, collects) against the ideal in the
same run: ceil(N / cap) waves of one job duration each, with nothing else costing time. The
remainder is process start, polling granularity and collecting.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import _harness
from benchmarks.fleet import _cli

PAD = 4000
"""Characters of text per request with `--by tokens`: about 1,000 tokens each."""


def _project(root: Path, resources: int, cap: int, poll: float, tokens: int | None) -> None:
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    limit = (
        f"guardrails:\n  max_concurrent_jobs: {cap}\n"
        if tokens is None
        else f"limits:\n  enqueued_tokens:\n    gemini-2.5-flash: {tokens}\n"
    )
    (root / "reconciler.yaml").write_text(
        "manifests: manifests\nstate: state/reconciler.state.json\nparallelism: 16\n"
        f"poll:\n  initial_seconds: {poll}\n  max_seconds: {poll}\n{limit}"
    )
    for i in range(resources):
        text = f"{i:03d}" + ("x" * PAD if tokens is not None else "")
        request = json.dumps({"key": "a", "request": {"contents": [{"parts": [{"text": text}]}]}})
        (root / "manifests" / f"w{i:03d}.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: BatchJob\n"
            f"metadata:\n  name: w{i:03d}\nspec:\n  model: gemini-2.5-flash\n"
            f"  source:\n    requests:\n      - {request}\n  output: results/w{i:03d}.jsonl\n"
        )


def waves_case(
    scratch: Path,
    resources: int,
    cap: int,
    job_seconds: float,
    poll: float,
    *,
    by_tokens: bool = False,
) -> dict[str, Any]:
    root = scratch / "waves-project"
    settings: dict[str, Any] = {"max_concurrent_jobs": cap, "job_seconds": job_seconds}
    tokens = None
    if by_tokens:
        # Each job is ~(PAD + 100) / 4 tokens however it is counted: `cap` fit, `cap + 1` not.
        tokens = cap * (PAD + 100) // 4
        settings = {"max_enqueued_tokens": tokens, "job_seconds": job_seconds}
    with _harness.emulator(scratch / "emulator-waves", **settings) as emulator:
        _project(root, resources, cap, poll, tokens)
        _, planned = _cli(root, emulator.base_url, "plan")
        fits = next((line for line in planned.stdout.splitlines() if "start now" in line), "")
        seconds, _ = _cli(root, emulator.base_url, "apply", "--auto-approve", "--wait")
        calls = emulator.calls()
    collected = len(list((root / "results").glob("*.jsonl")))
    ideal = math.ceil(resources / cap) * job_seconds
    return {
        "resources": resources,
        "cap": cap,
        "collected": collected,
        "creates": calls.get("batches.create_generate", 0),
        "seconds": seconds,
        "ideal_seconds": ideal,
        "ratio": seconds / ideal,
        "plan_line": fits,
        "by": "enqueued tokens" if by_tokens else "concurrent jobs",
        "settings": {**settings, "poll_seconds": poll},
    }


def report(figures: dict[str, Any]) -> list[str]:
    f = figures
    refused = f["creates"] - f["resources"]
    return [
        f"waves    {f['resources']} resources at a cap of {f['cap']} ({f.get('by', 'jobs')}): "
        f"{f['collected']} collected "
        f"in one apply --wait, {f['seconds']:.1f} s vs ideal ceil({f['resources']}/{f['cap']}) x "
        f"{f['settings']['job_seconds']:g} s = {f['ideal_seconds']:.1f} s: {f['ratio']:.2f}x; "
        f"{refused} create(s) refused; plan said: {f['plan_line'].split('. ')[0]!r}"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, default=30)
    parser.add_argument("--cap", type=int, default=5)
    parser.add_argument("--job-seconds", type=float, default=2.0)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--by", choices=("jobs", "tokens"), default="jobs")
    args = parser.parse_args()
    print(f"machine: {_harness.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-waves-") as scratch:
        figures = waves_case(
            Path(scratch),
            args.resources,
            args.cap,
            args.job_seconds,
            args.poll,
            by_tokens=args.by == "tokens",
        )
    print("\n".join(report(figures)))


if __name__ == "__main__":
    main()
