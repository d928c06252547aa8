"""Every benchmark case in one command, each as a ratio to a baseline measured in the same run.

    .venv/bin/python -m benchmarks            # default sizes: a few minutes
    .venv/bin/python -m benchmarks --full     # 1 GiB in and out, the seed loop over all jobs

Cases (DESIGN §9): ingest (validate + hash + upload) vs its floor; collect (download + summary
+ durable output) vs a plain download; plan over N manifests and N live jobs (time, API calls);
N small jobs applied end to end vs the seed guide's sequential loop; 30 resources past a cap of
5 concurrent jobs in one apply vs the ideal ceil(30/5) x job duration; start-up (`--help`,
`validate` on an empty project) vs a bare interpreter; every step over N small manifests (the
default run N = 100 only; `--scale-sizes 100,1000,5000`, or `--full` for 100 to 10,000); 100
small jobs vs a hand-written asyncio script.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks import _harness, asyncio_floor, fleet, scale, startup, transfer, waves


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--full", action="store_true", help="1 GiB files; seed loop over all jobs")
    parser.add_argument("--size-mib", type=int, help="input and results size (default 256)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per transfer side (best kept)")
    parser.add_argument("--manifests", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument(
        "--seed-jobs", type=int, help="jobs the seed loop runs (default 10, all with --full)"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency per call")
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument(
        "--only",
        choices=("transfer", "fleet", "waves", "startup", "scale", "floor"),
        help="run one group only",
    )
    parser.add_argument(
        "--scale-sizes",
        help="N for the scale case, comma-separated (default 100; --full 100..10,000)",
    )
    parser.add_argument(
        "--floor-repeat", type=int, default=1, help="runs per side of the floor case"
    )
    args = parser.parse_args()
    size = args.size_mib or (1024 if args.full else 256)
    seed_jobs = args.seed_jobs or (args.jobs if args.full else min(10, args.jobs))
    print(f"machine: {_harness.machine()}")
    began = time.perf_counter()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        if args.only in (None, "transfer"):
            figures = transfer.measure(size, args.repeat, Path(scratch))
            lines += transfer.report(figures)
            print("\n".join(lines), flush=True)
        if args.only in (None, "fleet"):
            plan = fleet.plan_case(Path(scratch), args.manifests) if args.manifests else None
            jobs = (
                fleet.jobs_case(
                    Path(scratch), args.jobs, seed_jobs, args.latency, args.job_seconds, 0.5
                )
                if args.jobs
                else None
            )
            fleet_lines = fleet.report(plan, jobs)
            print("\n".join(fleet_lines), flush=True)
        if args.only in (None, "waves"):
            figures = waves.waves_case(Path(scratch), 30, 5, 2.0, 0.2)
            print("\n".join(waves.report(figures)), flush=True)
        if args.only in (None, "startup"):
            timings = startup.measure(9, Path(scratch))
            print("\n".join(startup.report(timings)), flush=True)
        if args.only in (None, "scale"):
            sizes = (
                [int(n) for n in args.scale_sizes.split(",")]
                if args.scale_sizes
                else ([100, 1000, 5000, 10_000] if args.full else [100])
            )
            runs = scale.run(sizes, Path(scratch), 32, 0.0, 1.0)
            print("\n".join(line for line in scale.report(runs) if "growth" in line), flush=True)
        if args.only in (None, "floor"):
            floor_runs = asyncio_floor.measure(
                Path(scratch), args.jobs, 32, 1.0, args.floor_repeat, 0.02, 2.0
            )
            print("\n".join(asyncio_floor.report(floor_runs, args.jobs)), flush=True)
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
