"""Emulator I/O benchmark: upload + download of a large file through the SDK, server memory flat.

Starts the emulator in a subprocess (`python -m reconciler.emulator`, `_harness.emulator`), uploads a generated file of
`--size-mib` MiB with `client.files.upload` (8 MiB resumable chunks), downloads it back with
`client.files.download(destination=...)`, checks the SHA-256, and prints throughput plus the
server's peak RSS (VmHWM), which must stay flat whatever the size (DESIGN §9: < 200 MiB).

    .venv/bin/python -m benchmarks.emulator_io [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from google import genai

from benchmarks._harness import API_KEY, emulator

RSS_LIMIT_MIB = 200.0
_BLOCK = 1024 * 1024


def _write_input(path: Path, size_mib: int) -> str:
    """JSONL-looking bytes, one random block repeated with a varying line: cheap to generate."""
    sha = hashlib.sha256()
    seed = os.urandom(_BLOCK // 2).hex().encode()[: _BLOCK - 1] + b"\n"
    with path.open("wb") as out:
        for index in range(size_mib):
            block = seed[:-32] + f"{index:031d}".encode() + b"\n"
            out.write(block)
            sha.update(block)
    return sha.hexdigest()


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * _BLOCK):
            sha.update(block)
    return sha.hexdigest()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emulator-io-") as tmp:
        work = Path(tmp)
        source, target = work / "input.jsonl", work / "downloaded.jsonl"
        print(f"generating {args.size_mib} MiB input ...", file=sys.stderr)
        expected = _write_input(source, args.size_mib)
        with emulator(
            work / "data",
            max_file_bytes=max(2 * 1024**3, (args.size_mib + 1) * _BLOCK),
            download_uploaded_files=True,  # the service serves only generated files
        ) as server:
            idle_rss = _peak_rss_mib(server.process.pid)
            client = genai.Client(api_key=API_KEY, http_options={"base_url": server.base_url})
            started = time.perf_counter()
            uploaded = client.files.upload(file=str(source), config={"mime_type": "jsonl"})
            upload_s = time.perf_counter() - started
            started = time.perf_counter()
            client.files.download(file=uploaded.name or "", destination=str(target))
            download_s = time.perf_counter() - started
            peak_rss = _peak_rss_mib(server.process.pid)
        ok = _sha256(target) == expected
        mib = args.size_mib
        print(f"size                 {mib} MiB")
        print(f"upload   (SDK)       {upload_s:7.2f} s  {mib / upload_s:8.1f} MiB/s")
        print(f"download (SDK)       {download_s:7.2f} s  {mib / download_s:8.1f} MiB/s")
        print(f"server RSS idle      {idle_rss:7.1f} MiB")
        print(
            f"server RSS peak      {peak_rss:7.1f} MiB  (limit {RSS_LIMIT_MIB:.0f} MiB: {'ok' if peak_rss < RSS_LIMIT_MIB else 'EXCEEDED'})"
        )
        print(f"round trip sha256    {'identical' if ok else 'MISMATCH'}")
        return 0 if ok and peak_rss < RSS_LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
