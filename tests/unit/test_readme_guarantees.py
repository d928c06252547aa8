"""Every guarantee the README states links to a test file that exists and names a test."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_guarantee_links_to_an_existing_test_file() -> None:
    text = (REPO / "README.md").read_text()
    section = text.split("## What reconciler guarantees", 1)[1].split("\n## ", 1)[0]
    bullets = [b for b in section.split("\n- ") if b.startswith("**")]
    assert len(bullets) >= 8
    for bullet in bullets:
        links = re.findall(r"\]\((tests/[^)]+\.py)\)", bullet)
        assert links, f"a guarantee without a test: {bullet[:60]}"
        for link in links:
            path = REPO / link
            assert path.is_file(), link
            assert "def test_" in path.read_text(), link
