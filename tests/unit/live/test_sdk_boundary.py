"""Only reconciler/live/gemini.py and its live/ siblings may import google.genai (DESIGN §8)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import reconciler

PACKAGE = Path(reconciler.__file__).parent
ALLOWED = {PACKAGE / "live" / "gemini.py"}


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


def test_no_module_outside_the_adapter_imports_google_genai() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in ALLOWED and _imports_genai(ast.parse(path.read_text(encoding="utf-8")))
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


def test_the_adapter_is_the_module_that_imports_the_sdk() -> None:
    assert _imports_genai(ast.parse((PACKAGE / "live" / "gemini.py").read_text(encoding="utf-8")))


def test_live_values_import_without_loading_the_sdk() -> None:
    code = (
        "import sys; import reconciler.live.snapshot, reconciler.live.tags, "
        "reconciler.live.endpoint, reconciler.live.wire; "
        "sys.exit(1 if 'google.genai' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
