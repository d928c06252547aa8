"""cpu.py: a second process is taken only when a core is idle besides this one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler import cpu


@pytest.mark.parametrize(
    ("idle", "expected"), [(2.0, True), (1.6, True), (1.4, False), (0.2, False)]
)
def test_a_second_process_needs_a_core_idle_besides_this_one(
    monkeypatch: pytest.MonkeyPatch, idle: float, expected: bool
) -> None:
    monkeypatch.setattr(cpu, "idle_cores", lambda: idle)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert cpu.second_process_pays() is expected


def test_one_core_never_takes_a_second_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "idle_cores", lambda: 1.0)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert cpu.second_process_pays() is False


def test_idle_cores_is_within_the_machine() -> None:
    assert 0.0 <= cpu.idle_cores(0.01) <= (os.cpu_count() or 1) + 0.01


def test_split_lands_on_the_start_of_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"aaaa\nbbbbbbbb\ncc\n")
    size = path.stat().st_size
    assert cpu.next_line_start(str(path), 0, size) == 5
    assert cpu.next_line_start(str(path), 7, size) == 14
    assert cpu.next_line_start(str(path), 16, size) == size
