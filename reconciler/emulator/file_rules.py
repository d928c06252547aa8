"""What a new file must be, as the Files API checks it at upload (and the admin API when it
seeds one): a supported MIME type, a well-formed chosen id, a display name within its limit;
and how long a media file stays PROCESSING before it is ACTIVE."""

from __future__ import annotations

import re
from typing import Any

from reconciler.emulator import wire
from reconciler.emulator.plumbing import Reject
from reconciler.emulator.settings import EmulatorSettings

_FILE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
MAX_DISPLAY_NAME = 512
_TOP_LEVEL_TYPES = frozenset(
    {"application", "audio", "font", "image", "model", "text", "video", "message", "multipart"}
)
_BARE_TYPES = frozenset({"jsonl", "json"})
"""Bare names the service takes as MIME types: the batch guide uploads with `mime_type='jsonl'`
(cookbook Batch_mode.ipynb, executed against the service)."""


def check_mime(mime: str, settings: EmulatorSettings) -> None:
    """Refuse a MIME type the service does not support (`bad/mime_type`: python-genai's own
    tests/files/test_upload.py::test_bad_mime_type expects "Unsupported MIME")."""
    if settings.accept_any_mime_type:
        return
    top, slash, sub = mime.partition("/")
    ok = (top.lower() in _TOP_LEVEL_TYPES and bool(sub)) if slash else mime in _BARE_TYPES
    if not ok:
        raise Reject(wire.error(400, f"Unsupported MIME type: {mime}"))


def processing_seconds(mime: str, settings: EmulatorSettings) -> float:
    """How long a new file stays PROCESSING: audio and video are processed, the rest not."""
    if mime.split("/", 1)[0] in ("audio", "video"):
        return settings.media_processing_seconds
    return 0.0


def check_file_id(file_id: str) -> None:
    """A chosen file id: "up to 40 characters that are lowercase alphanumeric or dashes (-).
    The ID cannot start or end with a dash." (File.name in googleapis' v1beta file.proto)."""
    if not _FILE_ID.fullmatch(file_id):
        raise Reject(
            wire.bad_request(
                [
                    (
                        "file.name",
                        "File name must be lower-case alphanumerics or dashes (not first or"
                        " last), at most 40 characters.",
                    )
                ]
            )
        )


def check_display_name(display: Any) -> None:
    """ "The display name must be no more than 512 characters in length" (File.display_name)."""
    if isinstance(display, str) and len(display) > MAX_DISPLAY_NAME:
        raise Reject(
            wire.bad_request(
                [
                    (
                        "file.display_name",
                        f"The display name must be no more than {MAX_DISPLAY_NAME} characters"
                        f" in length, got {len(display)}.",
                    )
                ]
            )
        )
