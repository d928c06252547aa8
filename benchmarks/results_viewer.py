"""The results viewer on a large results file: page 1,000 must open in under a second with flat
memory (issue 21), because a page is two seeks in a line-offset index, never a read of the file.

    .venv/bin/python -m benchmarks.results_viewer                 # 1 GiB
    .venv/bin/python -m benchmarks.results_viewer --size-mib 256

It writes a results file of ~1 KiB lines, serves `reconciler.ui` over it with uvicorn on
127.0.0.1 in a child process, and times real HTTP GETs of the results page: the first open of
page 1,000 (which indexes the file only as far as that page), the same page again, the last
page (whose first open indexes the rest of the file), and a search for a key near the end (a
scan bounded per request). Peak RSS is the
child's `ru_maxrss`, before the first request and after the last.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from reconciler.plan.cost import default_price_table
from reconciler.state.document import ResourceRecord, ResultsRecord, State
from reconciler.ui.app import UiSources, create_app
from reconciler.ui.results_page import PAGE_ROWS as PAGE_SIZE
from reconciler.ui.server import running_ui
from reconciler.ui.views import Snapshot

RESOURCE = "big"
LOCATION = "results/big.jsonl"


def write_results(path: Path, size: int) -> int:
    """~1 KiB results lines (one in 50 an error) up to `size` bytes; returns the line count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    filler = "lorem ipsum dolor sit amet " * 34
    written = lines = 0
    with path.open("w", encoding="utf-8") as out:
        while written < size:
            key = f"req-{lines:08d}"
            if lines % 50 == 49:
                line = {"key": key, "error": {"code": 13, "message": "internal error"}}
            else:
                line = {
                    "key": key,
                    "response": {
                        "candidates": [
                            {"content": {"parts": [{"text": f"{key}: {filler}"}]},
                             "finishReason": "STOP"}
                        ],
                        "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 230},
                    },
                }  # fmt: skip
            text = json.dumps(line) + "\n"
            out.write(text)
            written += len(text)
            lines += 1
    return lines


def _state(lines: int, size: int) -> State:
    now = datetime.now(UTC)
    results = ResultsRecord(
        location=LOCATION,
        sha256="0" * 64,
        bytes=size,
        succeeded=lines - lines // 50,
        failed=lines // 50,
        collected_at=now,
        from_attempts=(1,),
    )
    record = ResourceRecord(name=RESOURCE, spec_hash="0" * 64, results=results)
    return State(lineage="bench", resources={RESOURCE: record})


def _get(url: str) -> tuple[float, int, str]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as answer:
        body = answer.read().decode("utf-8")
    return time.perf_counter() - began, answer.status, body


def child(root: Path, lines: int, size: int) -> None:
    """Serve the view over the file and time the requests; print one JSON line."""
    state = _state(lines, size)
    snapshot = Snapshot(None, state, None, None, default_price_table())
    sources = UiSources(root, "bench", lambda with_live: snapshot)
    figures: dict[str, float] = {}
    with running_ui(create_app(sources)) as base:
        figures["rss_before_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        page = f"{base}/resources/{RESOURCE}/results?page="
        figures["page_1000_first_s"], status, body = _get(page + "1000")
        assert status == 200 and f"req-{999 * PAGE_SIZE:08d}" in body, "page 1,000 is wrong"
        figures["page_1000_s"] = min(_get(page + "1000")[0] for _ in range(3))
        last = -(-lines // PAGE_SIZE)
        figures["page_last_first_s"] = _get(page + str(last))[0]
        figures["page_last_s"] = min(_get(page + str(last))[0] for _ in range(3))
        wanted = f"req-{lines - 10:08d}"
        seconds, _, body = _get(f"{base}/resources/{RESOURCE}/results?q={wanted}")
        figures["search_first_stretch_s"] = seconds
        figures["rss_after_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.results_viewer")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument(
        "--child", nargs=3, metavar=("ROOT", "LINES", "SIZE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), int(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as scratch:
        root = Path(scratch)
        began = time.perf_counter()
        path = root / LOCATION
        lines = write_results(path, args.size_mib << 20)
        size = path.stat().st_size
        print(
            f"wrote {size / (1 << 20):,.0f} MiB, {lines:,} results in {time.perf_counter() - began:.1f} s"
        )
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.results_viewer", "--child", str(root), str(lines), str(size)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout  # fmt: skip
        figures = json.loads(out.strip().splitlines()[-1])
        print(
            f"page 1,000 of {lines:,} results ({PAGE_SIZE} a page):\n"
            f"  first open (indexes the file up to there): {figures['page_1000_first_s']:.3f} s\n"
            f"  opened again:                               {figures['page_1000_s']:.3f} s\n"
            f"  last page, first open (indexes the rest):   {figures['page_last_first_s']:.3f} s\n"
            f"  last page again:                            {figures['page_last_s']:.3f} s\n"
            f"  search for a key near the end (first {256} MiB stretch): "
            f"{figures['search_first_stretch_s']:.3f} s\n"
            f"  peak RSS: {figures['rss_before_mib']:.0f} MiB before the first request, "
            f"{figures['rss_after_mib']:.0f} MiB after the last"
        )


if __name__ == "__main__":
    main()
