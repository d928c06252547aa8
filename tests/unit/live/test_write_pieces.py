"""live/writes.py `write_pieces`: downloaded chunks reach the file in order, whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.live import writes


@pytest.mark.parametrize("short_by", [0, 1, 5, 9])
def test_chunks_are_written_in_order_even_after_a_short_writev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_by: int
) -> None:
    pieces = [b"abcd", b"efg", b"hijklm"]
    real_writev = os.writev

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        # The kernel may write less than asked; write only the first bytes, as it would.
        data = b"".join(buffers)
        return real_writev(fd, [data[: len(data) - short_by]])

    monkeypatch.setattr(os, "writev", short_writev)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        writes.write_pieces(fd, pieces)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abcdefghijklm"
