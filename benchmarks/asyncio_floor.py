"""The practical floor for N small jobs: a hand-written asyncio google-genai script, vs apply.

    .venv/bin/python -m benchmarks.asyncio_floor --jobs 100 --repeat 3

Three sides, each a child process against a fresh emulator process with the same settings, run
interleaved `--repeat` times (medians and spreads printed):

- floor: this module's `floor` — the SDK's async client, `--parallelism` concurrent uploads and
  creates, then `batches.list` every `--poll` seconds until every job has ended, then
  concurrent downloads written to disk. What a careful person would write by hand, without
  state, crash safety, validation or results checks;
- matched: `reconciler apply --auto-approve --wait` with `parallelism` and the poll interval
  (initial and max) set to the script's;
- same-work: matched, and `cleanup:` off. Apply deletes each collected job's input and results
  file by default (the Files API keeps 20 GB a project); the script deletes nothing, so this
  side is the one that does the script's work and no more;
- defaults: the same apply with the project's defaults (parallelism, poll backoff, cleanup).

Before measuring, the reconciler package's bytecode is compiled (`compileall`), as installing
it does: a checkout run with PYTHONDONTWRITEBYTECODE set (this machine's environment) would
otherwise compile every module of ours on every run, some 0.2-0.3 s of CPU the SDK, installed
with its bytecode, never pays (`--no-compile` measures that too).

Printed per side: wall time, CPU time, peak RSS, API calls (counted by the emulator, and per
route where a side's differ from the floor's), and the ratio of its median wall time to the
floor's. Targets (issue 22): matched <= 1.15x the floor, defaults <= 1.3x.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _harness, scale

MODEL = "gemini-2.5-flash"
FINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
TARGETS = {"matched": 1.15, "same-work": 1.15, "defaults": 1.3}
SIDES = ("floor", "matched", "same-work", "defaults")


async def floor(base_url: str, inputs: list[Path], out: Path, parallelism: int, poll: float) -> int:
    """Upload and create every job, poll the list until all have ended, download every result.

    Returns the number of results written."""
    from google import genai

    client = genai.Client(api_key=_harness.API_KEY, http_options={"base_url": base_url})
    aio = client.aio
    gate = asyncio.Semaphore(parallelism)

    async def start(path: Path) -> str:
        async with gate:
            uploaded = await aio.files.upload(
                file=str(path), config={"display_name": path.stem, "mime_type": "jsonl"}
            )
            job = await aio.batches.create(
                model=MODEL, src=uploaded.name or "", config={"display_name": f"floor-{path.stem}"}
            )
            return job.name or ""

    names = dict(zip(await asyncio.gather(*(start(p) for p in inputs)), inputs, strict=True))
    ended: dict[str, str] = {}
    while len(ended) < len(names):
        await asyncio.sleep(poll)
        async for job in await aio.batches.list(config={"page_size": 100}):
            state = job.state.name if job.state else ""
            if job.name in names and state in FINAL and job.dest and job.dest.file_name:
                ended[job.name] = job.dest.file_name

    async def fetch(name: str, file_name: str) -> None:
        async with gate:
            content = await aio.files.download(file=file_name)
            (out / f"{names[name].stem}.jsonl").write_bytes(content or b"")

    await asyncio.gather(*(fetch(name, file_name) for name, file_name in ended.items()))
    return len(ended)


@dataclass(frozen=True, slots=True)
class Run:
    side: str
    seconds: float
    cpu_seconds: float
    peak_kib: int
    calls: int
    collected: int
    routes: tuple[tuple[str, int], ...] = ()
    """Calls per route (the emulator's names), sorted."""


def _project(root: Path, jobs: int, side: str, parallelism: int, poll: float) -> None:
    scale.write_project(root, jobs, parallelism)
    config = (
        "project: floor\nmanifests: manifests\nstate: state/reconciler.state.json\n"
        "guardrails:\n  max_concurrent_jobs: 100000\n  max_estimated_cost_usd: 1000000\n"
    )
    if side in ("matched", "same-work"):
        config += (
            f"parallelism: {parallelism}\npoll:\n  initial_seconds: {poll}\n  max_seconds: {poll}\n"
        )
    if side == "same-work":
        config += "cleanup:\n  inputs: false\n  results: false\n"
    (root / "reconciler.yaml").write_text(config)


def run_side(
    side: str, scratch: Path, jobs: int, parallelism: int, poll: float, settings: dict[str, Any]
) -> Run:
    root = scratch / f"{side}-{time.monotonic_ns()}"
    _project(root, jobs, side, parallelism, poll)
    with _harness.emulator(root / "emulator", **settings) as emulator:
        if side == "floor":
            out = root / "results"
            out.mkdir()
            argv = [
                sys.executable,
                "-m",
                "benchmarks.asyncio_floor",
                "--child",
                str(root),
                emulator.base_url,
                "--parallelism",
                str(parallelism),
                "--poll",
                str(poll),
            ]
            measured = _harness.run_measured(argv)
        else:
            argv = [sys.executable, "-m", "reconciler", "-C", str(root)]
            argv += ["apply", "--auto-approve", "--wait"]
            measured = _harness.run_measured(argv, _harness.cli_env(emulator.base_url))
        if measured.exit_code != 0:
            raise RuntimeError(f"{side} exited {measured.exit_code}:\n{measured.stderr_tail}")
        routes = emulator.calls()
    collected = len(list((root / "results").glob("*.jsonl")))
    shutil.rmtree(root, ignore_errors=True)
    return Run(
        side,
        measured.seconds,
        measured.cpu_seconds,
        measured.peak_kib,
        sum(routes.values()),
        collected,
        tuple(sorted(routes.items())),
    )


def measure(
    scratch: Path,
    jobs: int,
    parallelism: int,
    poll: float,
    repeat: int,
    latency: float,
    job_seconds: float,
) -> dict[str, list[Run]]:
    settings = {"latency_seconds": latency, "job_seconds": job_seconds}
    runs: dict[str, list[Run]] = {side: [] for side in SIDES}
    for _ in range(repeat):
        for side in runs:
            runs[side].append(run_side(side, scratch, jobs, parallelism, poll, settings))
    return runs


def report(runs: dict[str, list[Run]], jobs: int) -> list[str]:
    base = statistics.median(r.seconds for r in runs["floor"])
    floor_routes = dict(runs["floor"][-1].routes)
    lines = []
    for side, side_runs in runs.items():
        seconds = [r.seconds for r in side_runs]
        median = statistics.median(seconds)
        line = (
            f"floor    {side:<9} {jobs} jobs: median {median:6.2f} s "
            f"(min {min(seconds):.2f}, max {max(seconds):.2f}, n={len(seconds)}); "
            f"cpu {statistics.median(r.cpu_seconds for r in side_runs):.2f} s; "
            f"peak {_harness.mib(max(r.peak_kib for r in side_runs)):.0f} MiB; "
            f"{statistics.median(r.calls for r in side_runs):.0f} calls; "
            f"{min(r.collected for r in side_runs)} results"
        )
        if side in TARGETS:
            ratio = median / base
            verdict = "met" if ratio <= TARGETS[side] else "MISSED"
            line += f": {ratio:.2f}x the floor (target <= {TARGETS[side]}x: {verdict})"
        lines.append(line)
        routes = dict(side_runs[-1].routes)
        differ = [
            f"{route} {routes.get(route, 0)} (floor {floor_routes.get(route, 0)})"
            for route in sorted(routes.keys() | floor_routes.keys())
            if routes.get(route, 0) != floor_routes.get(route, 0)
        ]
        if side != "floor" and differ:
            lines.append(f"           calls unlike the floor's: {', '.join(differ)}")
    return lines


def _child(root: Path, base_url: str, parallelism: int, poll: float) -> None:
    inputs = sorted((root / "data").glob("*.jsonl"))
    began = time.perf_counter()
    collected = asyncio.run(floor(base_url, inputs, root / "results", parallelism, poll))
    print(json.dumps({"collected": collected, "seconds": time.perf_counter() - began}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "BASE_URL"), help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--parallelism", type=int, default=32)
    parser.add_argument("--poll", type=float, default=1.0, help="the script's list interval")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.02, help="emulator latency per call")
    parser.add_argument("--job-seconds", type=float, default=2.0)
    parser.add_argument(
        "--no-compile", action="store_true", help="leave the package's bytecode uncompiled"
    )
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), args.child[1], args.parallelism, args.poll)
        return
    if not args.no_compile:
        compileall.compile_dir(_harness.ROOT / "reconciler", quiet=1)
    print(f"machine: {_harness.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as scratch:
        runs = measure(
            Path(scratch),
            args.jobs,
            args.parallelism,
            args.poll,
            args.repeat,
            args.latency,
            args.job_seconds,
        )
    print("\n".join(report(runs, args.jobs)))


if __name__ == "__main__":
    main()
