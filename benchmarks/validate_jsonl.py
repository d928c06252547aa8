"""Validating a large JSONL input against the one-pass floor measured in the same run (DESIGN §9).

    .venv/bin/python -m benchmarks.validate_jsonl --size-mib 1024

The floor is the least any checker must do: one read that sha256-hashes every byte, decodes
every line with msgspec and keeps the set of keys. `scan_jsonl` also checks each request's shape
and detects duplicates (`validate`), and for the planner also digests each request's canonical
JSON (`plan`). Each measurement runs in
its own subprocess so peak memory (ru_maxrss, worker processes included) belongs to it alone;
the file is read once beforehand so both measure against the page cache, and each is repeated,
keeping the best time, because other work on a shared machine only ever adds time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

BLOCK = 8 << 20
KINDS = {
    "floor": "floor (read+sha256+msgspec+keys)",
    "scan": "validate (no per-key digests)",
    "plan": "validate + per-key digests",
}
_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "we",
    "summarise",
    "explain",
    "translate",
    "and",
    "evaluate",
    "this",
    "short",
    "text",
    "about",
    "rivers",
    "cities",
    "bread",
    "tides",
    "trees",
    "budgets",
    "votes",
    "engines",
    "and",
    "clouds",
]


def generate(path: Path, size_mib: int, seed: int = 7) -> int:
    """Write ~size_mib MiB of realistic generate lines (text prompts, some generationConfig)."""
    rnd = random.Random(seed)
    target = size_mib << 20
    written = lines = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            chunk = []
            for _ in range(2000):
                text = " ".join(rnd.choices(_WORDS, k=rnd.randint(20, 120)))
                config = (
                    ', "generationConfig": {"temperature": 0.2, "maxOutputTokens": 256}'
                    if lines % 3
                    else ""
                )
                chunk.append(
                    f'{{"key": "req-{lines:09d}", "request": {{"contents": [{{"role": "user", '
                    f'"parts": [{{"text": "{text}"}}]}}]{config}}}}}\n'
                )
                lines += 1
            data = "".join(chunk)
            handle.write(data)
            written += len(data)
    return lines


def floor(path: Path) -> dict[str, object]:
    """Read + sha256 + msgspec decode of every line + key set: the least a checker can do."""
    hasher = hashlib.sha256()
    decode = msgspec.json.Decoder().decode
    keys: set[str] = set()
    tail = b""
    with path.open("rb", buffering=0) as handle:
        while block := handle.read(BLOCK):
            hasher.update(block)
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line:
                    keys.add(decode(line)["key"])
    if tail.strip():
        keys.add(decode(tail)["key"])
    return {"sha256": hasher.hexdigest(), "requests": len(keys)}


def scan(path: Path, workers: int | None, digests: bool) -> dict[str, object]:
    from reconciler.manifests.jsonl import scan_jsonl
    from reconciler.manifests.model import Task

    result = scan_jsonl(path, Task.GENERATE, path.parent, workers=workers, digests=digests)
    return {
        "sha256": result.digest.sha256,
        "requests": result.digest.request_count,
        "errors": len(result.diagnostics),
    }


def _child(kind: str, path: Path, workers: int | None) -> None:
    # Import before the clock starts: module import is start-up cost, not per-byte cost.
    import reconciler.manifests.jsonl  # noqa: F401

    start = time.perf_counter()
    outcome = floor(path) if kind == "floor" else scan(path, workers, digests=kind == "plan")
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({**outcome, "seconds": seconds, "peak_kib": max(own, children)}))


def _measure(kind: str, path: Path, workers: int | None) -> dict[str, object]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.validate_jsonl",
        "--child",
        kind,
        "--path",
        str(path),
    ]
    if workers is not None:
        command += ["--workers", str(workers)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def _seconds(result: dict[str, object]) -> float:
    return float(str(result["seconds"]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=256, help="Size of the generated input.")
    parser.add_argument(
        "--repeat", type=int, default=3, help="Runs of each measurement (best kept)."
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Force scan_jsonl's worker count (1 or 2)."
    )
    parser.add_argument("--input", type=Path, help="Use this JSONL file instead of generating one.")
    parser.add_argument("--child", choices=list(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.path, args.workers)
        return
    with tempfile.TemporaryDirectory(prefix="bench-jsonl-") as scratch:
        path = args.input or Path(scratch) / "input.jsonl"
        if args.input is None:
            began = time.perf_counter()
            lines = generate(path, args.size_mib)
            size = path.stat().st_size / 2**20
            print(
                f"generated {size:,.0f} MiB, {lines:,} lines in {time.perf_counter() - began:.1f} s"
            )
        size_mib = path.stat().st_size / 2**20
        with path.open("rb", buffering=0) as handle:  # warm the page cache for every side
            while handle.read(BLOCK):
                pass
        runs: dict[str, list[dict[str, object]]] = {kind: [] for kind in KINDS}
        for _ in range(args.repeat):
            for kind in KINDS:  # interleaved, so a burst of load elsewhere hits every side
                runs[kind].append(_measure(kind, path, args.workers))
        best = {kind: min(results, key=_seconds) for kind, results in runs.items()}
        for kind in ("scan", "plan"):
            assert best["floor"]["sha256"] == best[kind]["sha256"], (
                "the passes read different bytes"
            )
            assert best["floor"]["requests"] == best[kind]["requests"], "request counts differ"
        for kind, label in KINDS.items():
            seconds = _seconds(best[kind])
            peak = int(str(best[kind]["peak_kib"])) / 1024
            all_times = ", ".join(f"{_seconds(r):.2f}" for r in runs[kind])
            print(
                f"{label:34s} {seconds:7.2f} s {size_mib / seconds:8.1f} MiB/s"
                f"  peak {peak:7.1f} MiB  (runs: {all_times})"
            )
        floor_seconds = _seconds(best["floor"])
        for kind in ("scan", "plan"):
            print(
                f"ratio {kind}/floor: {_seconds(best[kind]) / floor_seconds:.2f}x  (target <= 1.25x)"
            )
        print(
            f"requests: {best['scan']['requests']:,}; errors: {best['scan']['errors']};"
            f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )


if __name__ == "__main__":
    main()
