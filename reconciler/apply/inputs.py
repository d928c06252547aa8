"""Turn a desired source into what one job sends: a JSONL file to upload, or inline requests.

Most jobs send the source file unchanged (no copy, no decode). A copy is written only when the
job sends a subset of the requests (retry of failed requests, incremental re-run), one shard of
many, or when requests reference local media whose paths must become uploaded file URIs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec

from reconciler.apply.files import atomic_file, iter_jsonl_lines
from reconciler.manifests.desired import DesiredResource

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

INLINE_KEY_FORMAT = "request-{}"
"""Keys given to inline requests that name none: 1-based position, as the manifests loader does."""


@dataclass(frozen=True, slots=True)
class PreparedInput:
    """One job's input: exactly one of a file to upload or a list of inline requests."""

    shard: int | None
    request_count: int
    keys: tuple[str, ...] | None
    """The keys it sends when it is a subset or a shard (None: the whole source)."""
    file: Path | None = None
    inline_requests: tuple[Mapping[str, Any], ...] | None = None
    bytes: int = 0


def inline_source_lines(resource: DesiredResource) -> list[dict[str, Any]]:
    """The inline requests of a manifest as `{"key", "request"}` lines, keys filled in."""
    requests = resource.manifest.spec.source.requests or []
    lines: list[dict[str, Any]] = []
    for position, item in enumerate(requests, start=1):
        if "request" in item and isinstance(item.get("request"), dict):
            key = str(item.get("key") or INLINE_KEY_FORMAT.format(position))
            lines.append({"key": key, "request": item["request"]})
        else:
            lines.append({"key": INLINE_KEY_FORMAT.format(position), "request": item})
    return lines


def iter_source_lines(
    resource: DesiredResource, project_root: Path
) -> Iterator[bytes | dict[str, Any]]:
    """Every request line of the source: raw JSONL bytes for files, dicts for inline requests."""
    source = resource.manifest.spec.source
    if source.file is not None:
        yield from iter_jsonl_lines(project_root / source.file)
    else:
        yield from inline_source_lines(resource)


def _decoded(line: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(line, dict):
        return line
    value = _decoder.decode(line)
    assert isinstance(value, dict)
    return value


def substitute_media(value: Any, uris: Mapping[str, tuple[str, str]]) -> Any:
    """Replace `file_data/fileData: {path}` parts by `{fileUri, mimeType}` of the uploaded file."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name in ("file_data", "fileData") and isinstance(item, dict) and "path" in item:
                uri, mime = uris[str(item["path"])]
                out["fileData"] = {
                    "fileUri": uri,
                    "mimeType": item.get("mime_type") or item.get("mimeType") or mime,
                }
            else:
                out[name] = substitute_media(item, uris)
        return out
    if isinstance(value, list):
        return [substitute_media(item, uris) for item in value]
    return value


def prepare_inputs(
    resource: DesiredResource,
    project_root: Path,
    staging: Path,
    *,
    shards: int,
    only_keys: frozenset[str] | None,
    media_uris: Mapping[str, tuple[str, str]],
    max_bytes: int = 0,
) -> list[PreparedInput]:
    """Split the source into `shards` inputs, keeping only `only_keys` when given.

    Shards are contiguous runs of requests of near-equal count, so their results concatenate
    back in input order. With `max_bytes`, a shard is also closed before a line would take its
    file over that size: the service refuses larger input files, and the planner, which knows
    only the source's totals, counts shards as if lines were of equal size. When they are not,
    the split yields more shards than `shards`, never a file over the limit.
    """
    source = resource.manifest.spec.source
    total = resource.source.request_count if only_keys is None else len(only_keys)
    shards = max(1, min(shards, total or 1))
    needs_media = bool(resource.media)
    keep: Callable[[str], bool] = (
        (lambda _key: True) if only_keys is None else only_keys.__contains__
    )

    if source.file is not None and shards == 1 and only_keys is None and not needs_media:
        path = project_root / source.file
        size = path.stat().st_size
        if max_bytes <= 0 or size <= max_bytes:
            return [PreparedInput(None, total, None, file=path, bytes=size)]

    per_shard = -(-total // shards)  # ceiling division
    staging.mkdir(parents=True, exist_ok=True)
    lines = iter_source_lines(resource, project_root)
    if source.requests is not None:
        return _inline_shards(lines, shards, per_shard, keep, media_uris if needs_media else None)
    inputs: list[PreparedInput] = []
    pending: tuple[bytes, str] | None = None  # a line that did not fit the previous shard
    exhausted = False
    while not exhausted:
        index = len(inputs)
        keys: list[str] = []
        size = 0
        target = staging / f"input-{index}.jsonl"
        with atomic_file(target) as handle:
            while len(keys) < per_shard:
                if pending is not None:
                    raw, key = pending
                    pending = None
                else:
                    line = next(lines, None)
                    if line is None:
                        exhausted = True
                        break
                    decoded = _decoded(line)
                    key = str(decoded.get("key"))
                    if not keep(key):
                        continue
                    encoded = (
                        _encoder.encode(substitute_media(decoded, media_uris))
                        if needs_media
                        else line
                    )
                    assert isinstance(encoded, bytes)
                    raw = encoded
                if max_bytes > 0 and keys and size + len(raw) + 1 > max_bytes:
                    pending = (raw, key)
                    break
                handle.write(raw)
                handle.write(b"\n")
                size += len(raw) + 1
                keys.append(key)
        if keys:
            inputs.append(PreparedInput(index, len(keys), tuple(keys), file=target, bytes=size))
        else:
            target.unlink(missing_ok=True)
    if len(inputs) == 1:
        inputs[0] = replace(inputs[0], shard=None)
    return inputs


def _inline_shards(
    lines: Iterator[bytes | dict[str, Any]],
    shards: int,
    per_shard: int,
    keep: Callable[[str], bool],
    media_uris: Mapping[str, tuple[str, str]] | None,
) -> list[PreparedInput]:
    """Inline requests in `shards` runs of at most `per_shard` (inline payloads are small)."""
    inputs: list[PreparedInput] = []
    for index in range(shards):
        keys: list[str] = []
        items: list[dict[str, Any]] = []
        for line in lines:
            decoded = _decoded(line)
            if not keep(str(decoded["key"])):
                continue
            if media_uris is not None:
                decoded = substitute_media(decoded, media_uris)
            items.append(decoded)
            keys.append(str(decoded["key"]))
            if len(keys) == per_shard:
                break
        if items:
            shard = index if shards > 1 else None
            inputs.append(
                PreparedInput(shard, len(items), tuple(keys), inline_requests=tuple(items))
            )
    return inputs


def keys_in_order(resource: DesiredResource, project_root: Path) -> list[str]:
    """Every request key of the source in input order (to restore keys of inline responses)."""
    return [str(_decoded(line).get("key")) for line in iter_source_lines(resource, project_root)]


def select_keys(all_keys: Sequence[str], wanted: frozenset[str]) -> tuple[str, ...]:
    return tuple(key for key in all_keys if key in wanted)
