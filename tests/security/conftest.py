"""Security suites: hostile input, secret handling, plan tampering (`make security`).

Every test here carries one of the markers `hostile_input`, `secret_scan` or `plan_tampering`;
`make security` runs them and prints cases tried / held / failed per category (report.py).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SECRET = "AIzaSy-security-suite-secret-4f1c9"


@dataclass
class Recorder:
    """A real HTTP server that records the headers of every request and answers like an empty
    Gemini service (no batches, no files), so a client that reaches it would carry on."""

    url: str
    headers: list[dict[str, str]] = field(default_factory=list)

    def saw_secret(self, secret: str = SECRET) -> bool:
        return any(secret in value for seen in self.headers for value in seen.values())


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = json.dumps({}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Recorder(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()


def run_cli(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m reconciler -C root ...` with a clean RECONCILER_*/key environment."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECONCILER_") and k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    }
    keep.update({"NO_COLOR": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=keep,
        stdin=subprocess.DEVNULL,
    )


def write_project(root: Path, reconciler_yaml: str, *, requests: int = 2) -> Path:
    """A project with one inline-request manifest and the given project file."""
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "reconciler.yaml").write_text(reconciler_yaml)
    lines = "".join(
        f"      - key: k{i}\n        request:\n          contents:\n"
        f"            - parts:\n                - text: hello {i}\n"
        for i in range(requests)
    )
    (root / "manifests" / "poems.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: poems\nspec:\n"
        "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        f"{lines}  output: results/poems.jsonl\n"
    )
    return root
