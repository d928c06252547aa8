"""Many resources: `plan` over N manifests and N live jobs, and N small jobs applied end to end.

    .venv/bin/python -m benchmarks.fleet --manifests 1000 --jobs 100

Both run the real CLI (`python -m reconciler`) in a subprocess against one emulator process and
count API calls at the emulator (`/_emulator/calls`).

plan: a project of N inline-request manifests is applied once without waiting (setup, not
measured), so the service holds N jobs; then `reconciler plan` is timed and its calls counted.
Target: at most ceil(N / page size) + 3 calls (one paginated list walk), under 3 s for 1,000.

jobs: N file-source manifests are applied with `apply --auto-approve --wait` (upload, create,
wait, collect) and compared with the seed guide's loop run against the same emulator settings:
for each job in turn upload, create, poll `batches.get` until it ends, download the results.
The guide sleeps 30 s between polls; here both sides poll at the project's initial poll interval.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _harness

PAGE_SIZE = 100
"""The service's (and the emulator's) largest list page; the adapter asks for it."""


def _project(root: Path, base_url: str, poll: float) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifests").mkdir(exist_ok=True)
    (root / "reconciler.yaml").write_text(
        "manifests: manifests\nstate: state/reconciler.state.json\n"
        f"parallelism: 32\npoll:\n  initial_seconds: {poll}\n  max_seconds: {poll * 2}\n"
        "guardrails:\n  max_concurrent_jobs: 100000\n"
    )


def _cli(root: Path, base_url: str, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    # The emulator answers over plain http: the key goes there only when trusted by name.
    env.update(
        {
            "RECONCILER_ENDPOINT": base_url,
            "RECONCILER_TRUST_ENDPOINT": base_url,
            "GEMINI_API_KEY": _harness.API_KEY,
        }
    )
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=_harness.ROOT,
    )
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 2):
        raise RuntimeError(f"reconciler {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return seconds, done


def _requests(index: int, count: int) -> list[dict[str, Any]]:
    return [
        {"key": f"r{j}", "request": {"contents": [{"parts": [{"text": f"job {index} q {j}"}]}]}}
        for j in range(count)
    ]


def plan_case(scratch: Path, manifests: int) -> dict[str, Any]:
    with _harness.emulator(
        scratch / "emulator-plan", job_seconds=3600, max_concurrent_jobs=100_000
    ) as emulator:
        root = scratch / "plan-project"
        _project(root, emulator.base_url, 0.2)
        for i in range(manifests):
            (root / "manifests" / f"m{i:04d}.yaml").write_text(
                "apiVersion: reconciler/v1\nkind: BatchJob\n"
                f"metadata:\n  name: m{i:04d}\nspec:\n  model: gemini-2.5-flash\n"
                "  source:\n    requests:\n"
                f"      - contents: [{{parts: [{{text: 'question {i}'}}]}}]\n"
                f"  output: results/m{i:04d}.jsonl\n"
            )
        setup, _ = _cli(root, emulator.base_url, "apply", "--auto-approve", "--no-wait")
        emulator.reset_calls()
        seconds, done = _cli(root, emulator.base_url, "plan", "--detailed-exitcode")
        calls = emulator.calls()
    return {
        "manifests": manifests,
        "setup_seconds": setup,
        "seconds": seconds,
        "calls": calls,
        "total_calls": sum(calls.values()),
        "budget": math.ceil(manifests / PAGE_SIZE) + 3,
        "exit": done.returncode,
    }


def _seed_loop(base_url: str, inputs: list[Path], poll: float, work: Path) -> float:
    """The guide's file-job steps, one job after another (sleep shortened to `poll`)."""
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=_harness.API_KEY, http_options={"base_url": base_url})
    began = time.perf_counter()
    for index, path in enumerate(inputs):
        uploaded = client.files.upload(
            file=str(path),
            config=types.UploadFileConfig(display_name=f"seed-{index}", mime_type="jsonl"),
        )
        job = client.batches.create(
            model="gemini-2.5-flash",
            src=uploaded.name or "",
            config={"display_name": f"seed-{index}"},
        )
        while True:
            job = client.batches.get(name=job.name or "")
            state = job.state.name if job.state else ""
            if state in (
                "JOB_STATE_SUCCEEDED",
                "JOB_STATE_FAILED",
                "JOB_STATE_CANCELLED",
                "JOB_STATE_EXPIRED",
            ):
                break
            time.sleep(poll)
        if job.dest and job.dest.file_name:
            content = client.files.download(file=job.dest.file_name)
            (work / f"seed-{index}.jsonl").write_bytes(content)
    return time.perf_counter() - began


def jobs_case(
    scratch: Path, jobs: int, seed_jobs: int, latency: float, job_seconds: float, poll: float
) -> dict[str, Any]:
    settings = {"latency_seconds": latency, "job_seconds": job_seconds}
    root = scratch / "jobs-project"
    with _harness.emulator(scratch / "emulator-jobs", **settings) as emulator:
        _project(root, emulator.base_url, poll)
        (root / "data").mkdir(exist_ok=True)
        inputs = []
        for i in range(jobs):
            path = root / "data" / f"j{i:03d}.jsonl"
            path.write_text("".join(json.dumps(line) + "\n" for line in _requests(i, 5)))
            inputs.append(path)
            (root / "manifests" / f"j{i:03d}.yaml").write_text(
                "apiVersion: reconciler/v1\nkind: BatchJob\n"
                f"metadata:\n  name: j{i:03d}\nspec:\n  model: gemini-2.5-flash\n"
                f"  source:\n    file: data/j{i:03d}.jsonl\n  output: results/j{i:03d}.jsonl\n"
            )
        emulator.reset_calls()
        tool_seconds, _ = _cli(root, emulator.base_url, "apply", "--auto-approve", "--wait")
        tool_calls = emulator.calls()
        collected = len(list((root / "results").glob("*.jsonl")))
        emulator.reset_calls()
        work = scratch / "seed-out"
        work.mkdir(exist_ok=True)
        seed_seconds = _seed_loop(emulator.base_url, inputs[:seed_jobs], poll, work)
        seed_calls = emulator.calls()
    seed_per_job = seed_seconds / seed_jobs
    list_calls = tool_calls.get("batches.list", 0) + tool_calls.get("files.list", 0)
    return {
        "jobs": jobs,
        "collected": collected,
        "seconds": tool_seconds,
        "calls": tool_calls,
        "calls_per_job_excluding_lists": (sum(tool_calls.values()) - list_calls) / jobs,
        "list_calls": list_calls,
        "seed_jobs": seed_jobs,
        "seed_seconds": seed_seconds,
        "seed_seconds_for_all": seed_per_job * jobs,
        "seed_calls_per_job": sum(seed_calls.values()) / seed_jobs,
        "speedup": seed_per_job * jobs / tool_seconds,
        "settings": {**settings, "poll_seconds": poll},
    }


def report(plan: dict[str, Any] | None, jobs: dict[str, Any] | None) -> list[str]:
    lines = []
    if plan is not None:
        ok = plan["total_calls"] <= plan["budget"] and plan["seconds"] < 3
        lines.append(
            f"plan     {plan['manifests']} manifests / live jobs: {plan['seconds']:.2f} s, "
            f"{plan['total_calls']} calls {json.dumps(plan['calls'])} (budget {plan['budget']} "
            f"calls, < 3 s: {'met' if ok else 'MISSED'}); setup apply took "
            f"{plan['setup_seconds']:.1f} s"
        )
    if jobs is not None:
        extrapolated = (
            ""
            if jobs["seed_jobs"] == jobs["jobs"]
            else f" (measured over {jobs['seed_jobs']} jobs, scaled to {jobs['jobs']})"
        )
        lines.append(
            f"jobs     {jobs['jobs']} jobs created, waited, collected ({jobs['collected']} "
            f"outputs): {jobs['seconds']:.1f} s vs seed loop {jobs['seed_seconds_for_all']:.1f} s"
            f"{extrapolated}: {jobs['speedup']:.1f}x faster (target >= 20x); "
            f"{jobs['calls_per_job_excluding_lists']:.2f} calls per job + {jobs['list_calls']} "
            f"shared list calls (target <= 4 per job; seed loop "
            f"{jobs['seed_calls_per_job']:.1f} per job); calls {json.dumps(jobs['calls'])}; "
            f"emulator {json.dumps(jobs['settings'])}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifests", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--seed-jobs", type=int, default=None, help="Jobs the seed loop runs.")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
        plan = plan_case(Path(scratch), args.manifests) if args.manifests else None
        jobs = (
            jobs_case(
                Path(scratch),
                args.jobs,
                args.seed_jobs or args.jobs,
                args.latency,
                args.job_seconds,
                args.poll,
            )
            if args.jobs
            else None
        )
    print("\n".join(report(plan, jobs)))


if __name__ == "__main__":
    main()
