"""Only reconciler/live/ may import google.genai (DESIGN §8), and its value modules do not."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import reconciler

PACKAGE = Path(reconciler.__file__).parent
LIVE = PACKAGE / "live"
SDK_FREE = (
    "snapshot",
    "tags",
    "endpoint",
    "wire",
    "settings",
    "writes",
    "http",
    "connection",
    "batch_stats",
    "boundary",
    "retry",
    "embedded",
    "rest_route",
    "rest_values",
    "rest_reads",
    "reading",
)
"""live/ modules that apply/, plan/ and the tests may load without loading the SDK: the values,
and everything `plan` reads the service with (rest_reads.py)."""


def _imports_genai(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(
                a.name == "google.genai" or a.name.startswith("google.genai.") for a in node.names
            ):
                return True
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "google.genai" or node.module.startswith("google.genai."):
                return True
            if node.module == "google" and any(a.name == "genai" for a in node.names):
                return True
    return False


def test_no_module_outside_live_imports_google_genai() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if LIVE not in path.parents and _imports_genai(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_the_sdk_free_live_modules_do_not_import_it() -> None:
    offenders = [
        name
        for name in SDK_FREE
        if _imports_genai(ast.parse((LIVE / f"{name}.py").read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_the_boundary_check_recognises_every_import_spelling() -> None:
    for source in (
        "import google.genai",
        "import google.genai.types as t",
        "from google import genai",
        "from google.genai import types",
        "from google.genai.errors import APIError",
    ):
        assert _imports_genai(ast.parse(source)), source
    assert not _imports_genai(ast.parse("from google.cloud import storage"))


def test_the_adapter_modules_import_the_sdk() -> None:
    for name in ("adapter", "client", "convert", "sdk_request", "transfer"):
        assert _imports_genai(ast.parse((LIVE / f"{name}.py").read_text(encoding="utf-8"))), name


def test_live_values_import_without_loading_the_sdk() -> None:
    modules = ", ".join(f"reconciler.live.{name}" for name in SDK_FREE)
    code = f"import sys; import {modules}; sys.exit(1 if 'google.genai' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
