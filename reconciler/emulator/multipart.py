"""Parsing of a `multipart/related` upload body: JSON metadata first, then the file's bytes.

The Files API takes small uploads in one request (`X-Goog-Upload-Protocol: multipart` or
`?uploadType=multipart`), as Google's upload protocol defines it: two parts separated by the
boundary of the Content-Type header, each with its own headers.
"""

from __future__ import annotations

import json
from typing import Any


def _boundary(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() not in ("multipart/related", "multipart/form-data"):
        raise ValueError(f"multipart upload needs Content-Type multipart/related, got {kind!r}")
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode()
    raise ValueError("multipart Content-Type without a boundary")


def _part(raw: bytes) -> tuple[dict[str, str], bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    if not sep:
        raise ValueError("multipart part without a blank line after its headers")
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines():
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers, body


def split_related(content_type: str, body: bytes) -> tuple[Any, bytes, str | None]:
    """(metadata JSON, file bytes, the data part's Content-Type) of a multipart body.

    Raises:
        ValueError: not two parts, or metadata that is not JSON.
    """
    delimiter = b"--" + _boundary(content_type)
    chunks = body.split(delimiter)
    # chunks: preamble, part 1, part 2, "--" epilogue
    parts = [c for c in chunks[1:] if not c.startswith(b"--")]
    if len(parts) != 2:
        raise ValueError(f"multipart upload needs 2 parts (metadata, data), got {len(parts)}")
    cleaned = [p.removeprefix(b"\r\n").removeprefix(b"\n") for p in parts]
    cleaned = [
        p.removesuffix(b"\r\n") if p.endswith(b"\r\n") else p.removesuffix(b"\n") for p in cleaned
    ]
    _, meta_raw = _part(cleaned[0])
    data_headers, data = _part(cleaned[1])
    try:
        meta = json.loads(meta_raw) if meta_raw.strip() else {}
    except (ValueError, RecursionError) as exc:  # also too deep, or an integer too long
        raise ValueError(f"Invalid JSON payload received. {exc}") from exc
    return meta, data, data_headers.get("content-type")
