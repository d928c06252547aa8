"""Shared plumbing of the benchmark cases: an emulator in its own process, child measurements.

The emulator runs as `python -m reconciler.emulator` in a subprocess so its CPU and memory are
not charged to the side being measured; both sides of every ratio talk to the same emulator.
Each measured side runs in a child process of its own, so its peak RSS (ru_maxrss, VmHWM) is its
alone and module imports are paid before the clock starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench"


@dataclass(frozen=True, slots=True)
class Emulator:
    base_url: str
    process: subprocess.Popen[bytes]

    def _admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_emulator/{path}",
            data=data,
            method="POST" if data is not None or path.endswith("reset") else "GET",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def calls(self) -> dict[str, int]:
        """Calls per route since the last reset, as the emulator counted them."""
        counts: dict[str, int] = self._admin("calls")
        return counts

    def reset_calls(self) -> None:
        self._admin("calls/reset", {})

    def configure(self, **settings: Any) -> None:
        self._admin("settings", settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def emulator(data_dir: Path, **settings: Any) -> Iterator[Emulator]:
    """The emulator in a subprocess on a free port (or `port=`), stopped when the block exits."""
    port = int(settings.pop("port", None) or free_port())
    flags: list[str] = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags += [flag] if value else ["--no-" + name.replace("_", "-")]
        else:
            flags += [flag, str(value)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler.emulator",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *flags,
        ],
        cwd=ROOT,
    )
    handle = Emulator(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                handle.calls()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.05)
        yield handle
    finally:
        process.terminate()
        process.wait(timeout=30)


def peak_rss_kib() -> int:
    """This process's peak RSS and its children's (KiB): what a measured side used at most."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children)


def child_result(values: dict[str, Any]) -> None:
    """A child's answer to `run_child`: one JSON line on stdout, the last one printed."""
    print(json.dumps({**values, "peak_kib": peak_rss_kib()}), flush=True)


def run_child(module: str, args: Sequence[str]) -> dict[str, Any]:
    """Run `python -m <module> <args>` and return the JSON line it ends with."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{completed.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True, slots=True)
class Measured:
    """One child process run: wall and CPU time, its own peak RSS, exit status, stdout."""

    seconds: float
    cpu_seconds: float
    peak_kib: int
    exit_code: int
    stdout: str
    stderr_tail: str


def run_measured(argv: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Run `argv` and measure it alone: wait4 gives this child's own rusage (CPU, ru_maxrss)."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            seconds=seconds,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            peak_kib=usage.ru_maxrss,
            exit_code=process.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr_tail=err.read()[-4000:].decode(errors="replace"),
        )


def cli_env(base_url: str) -> dict[str, str]:
    """The environment of a CLI run against the emulator at `base_url`: no API key (the emulator
    needs none, and the CLI sends a key to no endpoint it was not told to trust)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECONCILER_") and k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    }
    env["RECONCILER_ENDPOINT"] = base_url
    return env


def warm(path: Path) -> None:
    """Read a file once so every side measures against the page cache, not the disk."""
    with path.open("rb", buffering=0) as handle:
        while handle.read(8 << 20):
            pass


def machine() -> str:
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return (
        f"{os.cpu_count()} CPU(s), {mem_kib / 2**20:.1f} GiB RAM, Python "
        f"{platform.python_version()} on {platform.system()} {platform.machine()}"
    )


def mib(kib: Any) -> float:
    return float(kib) / 1024
