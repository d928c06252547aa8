"""A large results download is hashed and summarised by a follower process as it arrives."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from reconciler.apply import summary
from reconciler.apply.files import temp_beside
from reconciler.apply.outputs import keep_downloaded, resolve_output
from reconciler.apply.summary import ResultsFollower
from tests.integration.live.test_gemini_transfers import (
    Script,
    Seen,
    respond,
    run_scripted,
)

OK = b'{"key": "k%d", "response": {"candidates": [{"content": {"parts": [{"text": "fine"}]}}]}}\n'
BAD = b'{"key": "k%d", "error": {"code": 13, "message": "internal"}}\n'


def results(lines: int) -> bytes:
    return b"".join((BAD if n % 9 == 4 else OK) % n for n in range(lines))


@pytest.fixture(autouse=True)
def follow_every_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files and any machine: the follower is normally for large files on an idle core."""
    monkeypatch.setattr(summary, "PARALLEL_SUMMARY_MIN_BYTES", 1)
    monkeypatch.setattr(summary, "second_process_pays", lambda: True)


async def whole(
    content: bytes, seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    respond(writer, 200, content)
    await writer.drain()
    return False


def test_follower_hashes_and_summarises_while_the_download_arrives(tmp_path: Path) -> None:
    content = results(30_000)
    target = resolve_output("out.jsonl", tmp_path)
    assert target.local_path is not None
    dest = temp_beside(target.local_path)
    follower = ResultsFollower()
    script = Script([lambda s, r, w: whole(content, s, r, w)])

    digest, size = asyncio.run(
        run_scripted(
            script,
            lambda a, _: a.download_file("files/batch-1", dest, follower=follower),
            "v1beta",
        )
    )

    assert (digest, size) == (hashlib.sha256(content).hexdigest(), len(content))
    assert follower.summary is not None
    failed = [f"k{n}" for n in range(30_000) if n % 9 == 4]
    assert (follower.summary.succeeded, follower.summary.failed) == (
        30_000 - len(failed),
        len(failed),
    )
    written = keep_downloaded(dest, target, digest, size, summary=follower.summary)
    assert written.failed_keys == tuple(failed)
    assert target.local_path.read_bytes() == content


def test_a_download_cut_mid_stream_is_followed_again_from_the_start(tmp_path: Path) -> None:
    content = results(20_000)
    dest = tmp_path / "out.jsonl"
    follower = ResultsFollower()

    async def cut(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        respond(writer, 200, content[: len(content) // 2], length=len(content))
        await writer.drain()
        return False

    script = Script([cut, lambda s, r, w: whole(content, s, r, w)])
    digest, size = asyncio.run(
        run_scripted(script, lambda a, _: a.download_file("files/b", dest, follower=follower), "v1")
    )

    assert (digest, size) == (hashlib.sha256(content).hexdigest(), len(content))
    assert follower.summary is not None
    assert follower.summary.succeeded + follower.summary.failed == 20_000


def test_when_the_follower_fails_the_adapter_hashes_the_file_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = results(5_000)
    dest = tmp_path / "out.jsonl"
    follower = ResultsFollower()
    monkeypatch.setattr(summary, "_follow", lambda path, conn: conn.close())  # dies at once

    script = Script([lambda s, r, w: whole(content, s, r, w)])
    digest, _ = asyncio.run(
        run_scripted(script, lambda a, _: a.download_file("files/c", dest, follower=follower), "v1")
    )

    assert digest == hashlib.sha256(content).hexdigest()
    assert follower.summary is None  # keep_downloaded then summarises the file itself
