"""Ingest (validate + hash + upload) and collect (download + merge + summarise) of large files.

    .venv/bin/python -m benchmarks.transfer --size-mib 1024

Ingest: the tool's path is the manifest loader's one-pass scan of the source (validation, SHA-256,
per-key digests for the planner) followed by the adapter's resumable upload through the SDK. Its
floor, measured in the same run against the same emulator, is `validate_jsonl.floor` (one read
that hashes every byte and decodes every line with msgspec) plus a plain HTTP upload of the same
bytes (one `upload, finalize` request streaming the file).

Collect: the tool's path is the collect stage's for one job and a local output:
`adapter.download_file` into a temp file beside the output, a `ResultsFollower` process
hashing and summarising the file as it arrives (when a core is idle), then `keep_downloaded`
(fsync, rename).
Its floor is a plain HTTP GET of the same file streamed to disk.

Merge: a re-run (retry of failed requests, incremental run) replaces one result in twenty; the
tool's path is `merge_results` into the previous copy plus `write_results` (summary, hash,
fsync, rename). Its floor is a plain copy of the previous file; there is no time target (the
copy is the kernel's), the figure to watch is peak RSS, which must not grow with the file.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import _harness
from benchmarks.validate_jsonl import floor as scan_floor
from benchmarks.validate_jsonl import generate

_BLOCK = 8 << 20
KINDS = ("ingest-floor", "ingest", "collect-floor", "collect", "merge-floor", "merge")
REPLACED_EVERY = 20
RATIO_TARGETS = {
    "ingest": "target <= 1.25x",
    "collect": "target <= 1.25x",
    "merge": "no time target: its floor is a kernel file copy; the point is bounded memory",
}
"""The merge case re-runs one request in this many (a retry or an incremental re-run)."""


def generate_results(path: Path, size_mib: int, seed: int = 11) -> int:
    """~size_mib MiB of result lines as the service writes them; one in fifty is an error."""
    rnd = random.Random(seed)
    words = [
        "the",
        "model",
        "answers",
        "with",
        "a",
        "short",
        "paragraph",
        "about",
        "rivers",
        "cities",
        "and",
        "bread",
    ]
    target = size_mib << 20
    written = lines = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            chunk = []
            for _ in range(2000):
                key = f"req-{lines:09d}"
                if lines % 50 == 49:
                    chunk.append(
                        f'{{"key": "{key}", "error": {{"code": 13, "message": "internal"}}}}\n'
                    )
                else:
                    text = " ".join(rnd.choices(words, k=rnd.randint(30, 150)))
                    chunk.append(
                        f'{{"key": "{key}", "response": {{"candidates": [{{"content": '
                        f'{{"parts": [{{"text": "{text}"}}], "role": "model"}}, '
                        f'"finishReason": "STOP"}}], "usageMetadata": {{"promptTokenCount": 31, '
                        f'"candidatesTokenCount": 120, "totalTokenCount": 151}}}}}}\n'
                    )
                lines += 1
            data = "".join(chunk)
            handle.write(data)
            written += len(data)
    return lines


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _connection(base_url: str) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    # A large blocksize: http.client's default 8 KiB sends make the floor needlessly slow.
    return http.client.HTTPConnection(parts.hostname or "", parts.port, blocksize=1 << 20)


def plain_upload(base_url: str, path: Path) -> str:
    """Start a resumable session and send the whole file in one `upload, finalize` request."""
    size = path.stat().st_size
    conn = _connection(base_url)
    conn.request(
        "POST",
        "/upload/v1beta/files",
        body=json.dumps({"file": {"displayName": "floor"}}),
        headers={
            "x-goog-api-key": _harness.API_KEY,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": "application/jsonl",
            "Content-Type": "application/json",
        },
    )
    response = conn.getresponse()
    response.read()
    upload_url = urlsplit(response.getheader("X-Goog-Upload-URL") or "")
    with path.open("rb") as body:
        conn.request(
            "POST",
            f"{upload_url.path}?{upload_url.query}",
            body=body,
            headers={
                "X-Goog-Upload-Command": "upload, finalize",
                "X-Goog-Upload-Offset": "0",
                "Content-Length": str(size),
            },
        )
        response = conn.getresponse()
        answer = json.loads(response.read())
    conn.close()
    return str(answer["file"]["name"])


def plain_download(base_url: str, name: str, dest: Path) -> int:
    """GET the file's media and stream it to disk: the least a download can do."""
    conn = _connection(base_url)
    file_id = name.removeprefix("files/")
    conn.request(
        "GET",
        f"/download/v1beta/files/{file_id}:download?alt=media",
        headers={"x-goog-api-key": _harness.API_KEY},
    )
    response = conn.getresponse()
    size = 0
    with dest.open("wb") as out:
        while block := response.read(1 << 20):
            out.write(block)
            size += len(block)
    conn.close()
    return size


def _adapter(base_url: str) -> Any:
    from reconciler.clock import SystemClock
    from reconciler.live.endpoint import Endpoint, EndpointKind
    from reconciler.live.gemini import connect

    # As `open_adapter` builds it: the SDK client over the adapter's own HTTP pool.
    endpoint = Endpoint(EndpointKind.URL, base_url, _harness.API_KEY, "v1beta")
    return connect(endpoint, clock=SystemClock())


def _tool_ingest(base_url: str, path: Path) -> dict[str, Any]:
    from reconciler.manifests.jsonl import scan_jsonl
    from reconciler.manifests.model import Task

    # Digests on: `plan` and `apply` need the per-key index for incremental re-runs.
    began = time.perf_counter()
    scanned = scan_jsonl(path, Task.GENERATE, path.parent, digests=True)
    scan_seconds = time.perf_counter() - began
    assert not scanned.diagnostics, scanned.diagnostics[:3]

    async def upload() -> str:
        adapter = _adapter(base_url)
        try:
            live = await adapter.upload_file(path, display_name="tool", mime_type="jsonl")
        finally:
            await adapter.aclose()
        return str(live.name)

    began = time.perf_counter()
    name = asyncio.run(upload())
    return {
        "requests": scanned.digest.request_count,
        "file": name,
        "scan_seconds": scan_seconds,
        "upload_seconds": time.perf_counter() - began,
    }


def _tool_collect(base_url: str, name: str, work: Path) -> dict[str, Any]:
    """`collect._download_in_place`'s steps (one job, local file output), without a state."""
    from reconciler.apply.files import temp_beside
    from reconciler.apply.outputs import keep_downloaded, resolve_output
    from reconciler.apply.summary import ResultsFollower

    target = resolve_output("results/out.jsonl", work)
    assert target.local_path is not None
    downloaded = temp_beside(target.local_path)
    follower = ResultsFollower()

    async def download() -> tuple[str, int]:
        adapter = _adapter(base_url)
        try:
            measured: tuple[str, int] = await adapter.download_file(
                name, downloaded, follower=follower
            )
        finally:
            await adapter.aclose()
        return measured

    began = time.perf_counter()
    measured = asyncio.run(download())
    download_seconds = time.perf_counter() - began
    began = time.perf_counter()
    written = keep_downloaded(downloaded, target, *measured, summary=follower.summary)
    return {
        "succeeded": written.succeeded,
        "failed": written.failed,
        "sha256": written.sha256,
        "download_seconds": download_seconds,
        "keep_seconds": time.perf_counter() - began,
    }


def generate_replacements(results: Path, out: Path) -> int:
    """New result lines for every `REPLACED_EVERY`-th key of `results`, as a re-run returns."""
    written = 0
    with results.open("rb") as source, out.open("wb") as sink:
        for number, line in enumerate(source):
            if number % REPLACED_EVERY == 0:
                key = json.loads(line)["key"]
                sink.write(
                    json.dumps(
                        {
                            "key": key,
                            "response": {
                                "candidates": [
                                    {
                                        "content": {
                                            "parts": [{"text": f"re-run answer for {key}"}]
                                        },
                                        "finishReason": "STOP",
                                    }
                                ]
                            },
                        }
                    ).encode()
                    + b"\n"
                )
                written += 1
    return written


def _tool_merge(results: Path, work: Path) -> dict[str, Any]:
    """`collect._write`'s merge of a partial attempt into the previous copy."""
    from reconciler.apply.files import iter_jsonl_lines
    from reconciler.apply.merging import merge_results
    from reconciler.apply.outputs import resolve_output, write_results

    merged = merge_results(
        iter_jsonl_lines(results),
        iter_jsonl_lines(results.with_name("replacements.jsonl")),
        work / "merge",
    )
    written = write_results(merged, resolve_output("out.jsonl", work), work / "gcs")
    return {"succeeded": written.succeeded, "failed": written.failed}


def _child(kind: str, base_url: str, path: Path, name: str, results: Path) -> None:
    # Imports before the clock: start-up cost is not per-byte cost.
    import google.genai  # noqa: F401

    import reconciler.apply.outputs
    import reconciler.apply.summary
    import reconciler.live.gemini
    import reconciler.manifests.jsonl  # noqa: F401

    work = Path(tempfile.mkdtemp(prefix="bench-child-", dir=path.parent))
    try:
        start = time.perf_counter()
        if kind == "ingest-floor":
            outcome: dict[str, Any] = dict(scan_floor(path))
            outcome["scan_seconds"] = time.perf_counter() - start
            began = time.perf_counter()
            outcome["file"] = plain_upload(base_url, path)
            outcome["upload_seconds"] = time.perf_counter() - began
        elif kind == "ingest":
            outcome = _tool_ingest(base_url, path)
        elif kind == "merge-floor":
            outcome = {"bytes": shutil.copyfile(results, work / "copy.jsonl").stat().st_size}
        elif kind == "merge":
            outcome = _tool_merge(results, work)
        elif kind == "collect-floor":
            outcome = {"bytes": plain_download(base_url, name, work / "plain.jsonl")}
        else:
            outcome = _tool_collect(base_url, name, work)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _harness.child_result({**outcome, "seconds": seconds})


def measure(
    size_mib: int, repeat: int, scratch: Path, *, input_path: Path | None = None
) -> dict[str, Any]:
    """Run every side `repeat` times, interleaved; keep each side's best time."""
    source = input_path or scratch / "input.jsonl"
    results = scratch / "results.jsonl"
    if input_path is None:
        print(f"  generating {size_mib} MiB of input and of results ...", file=sys.stderr)
        generate(source, size_mib)
    generate_results(results, size_mib)
    replaced = generate_replacements(results, results.with_name("replacements.jsonl"))
    quota = 4 * (source.stat().st_size + results.stat().st_size) * (repeat + 1)
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    with _harness.emulator(
        scratch / "emulator",
        max_file_bytes=max(2 << 30, source.stat().st_size + 1, results.stat().st_size + 1),
        storage_quota_bytes=max(20 << 30, quota),
    ) as emulator:
        name = plain_upload(emulator.base_url, results)
        for _ in range(repeat):
            for kind in KINDS:  # interleaved, so a burst of load elsewhere hits every side
                for path in (source, results):
                    _harness.warm(path)
                # Start every side with nothing left to write back: a side that does not
                # fsync (the floors) would otherwise leave the next side its 1 GiB of dirty
                # pages to flush, and the sides' order would decide the ratios.
                os.sync()
                runs[kind].append(
                    _harness.run_child(
                        "benchmarks.transfer",
                        [
                            "--child",
                            kind,
                            "--url",
                            emulator.base_url,
                            "--path",
                            str(source),
                            "--name",
                            name,
                            "--results",
                            str(results),
                        ],
                    )
                )
    best = {kind: min(rs, key=lambda r: float(r["seconds"])) for kind, rs in runs.items()}
    assert best["ingest"]["requests"] == best["ingest-floor"]["requests"]
    assert best["collect"]["succeeded"] + best["collect"]["failed"] > 0
    assert all(r["sha256"] == _sha256(results) for r in runs["collect"]), "collect's sha256"
    merged = best["merge"]
    assert (
        merged["succeeded"] + merged["failed"]
        == best["collect"]["succeeded"] + best["collect"]["failed"]
    ), "the merge keeps every key"
    assert replaced > 0
    return {
        "input_mib": source.stat().st_size / 2**20,
        "results_mib": results.stat().st_size / 2**20,
        "runs": runs,
        "best": best,
    }


def report(figures: dict[str, Any]) -> list[str]:
    best = figures["best"]
    lines = []
    cases = ("ingest", "collect", "merge")
    sizes = (figures["input_mib"], figures["results_mib"], figures["results_mib"])
    for case, size in zip(cases, sizes, strict=True):
        tool, floor = best[case], best[f"{case}-floor"]
        ratio = float(tool["seconds"]) / float(floor["seconds"])
        lines.append(
            f"{case:8s} {size:7.0f} MiB  tool {tool['seconds']:6.2f} s  floor "
            f"{floor['seconds']:6.2f} s  ratio {ratio:4.2f}x ({RATIO_TARGETS[case]})  peak RSS tool "
            f"{_harness.mib(tool['peak_kib']):6.1f} MiB, floor "
            f"{_harness.mib(floor['peak_kib']):6.1f} MiB (target < 200 MiB)"
        )
        # Where the time went, so a missed ratio names its stage.
        stages = [
            f"{side} {stage} {float(best[side][f'{stage}_seconds']):.2f} s"
            for side in (case, f"{case}-floor")
            for stage in ("scan", "upload", "download", "keep")
            if f"{stage}_seconds" in best[side]
        ]
        if stages:
            lines.append("         " + ", ".join(stages))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.url, args.path, args.name, args.results)
        return
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as scratch:
        figures = measure(args.size_mib, args.repeat, Path(scratch))
    print("\n".join(report(figures)))


if __name__ == "__main__":
    main()
