"""Deterministic fake model: GenerateContent / EmbedContent requests in, REST-shaped responses out.

The answer is a pure function of (model, request): a changed prompt or generation config gives a
changed answer, the same request always the same answer, so tests can assert on outputs and a
re-run of an unchanged job reproduces its results. Requests are checked the way the service
checks batch lines: anything malformed raises `RequestError` (gRPC code 3), which the caller turns
into a per-request error line, never an HTTP error. Field names are accepted in camelCase and
snake_case (protocol pitfall 20): requests are canonicalised to camelCase before reading.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any

INVALID_ARGUMENT = 3
INTERNAL = 13

_VOCABULARY = [
    "signal",
    "pattern",
    "model",
    "weights",
    "data",
    "answer",
    "layer",
    "context",
    "token",
    "vector",
    "learn",
    "predict",
    "light",
    "cloud",
    "quantum",
    "state",
    "field",
    "cat",
    "whisker",
    "poem",
    "river",
    "mountain",
    "sunrise",
    "city",
    "orbit",
    "circuit",
    "logic",
    "gradient",
    "memory",
    "sample",
    "batch",
    "quiet",
    "bright",
    "swift",
    "gentle",
]

_FILE_ID = re.compile(r"(?:^|/)files/([a-z0-9][a-z0-9-]*)")


class RequestError(Exception):
    """A per-request failure: becomes `{"error": {"code", "message"}}` in the job's output."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_status(self) -> dict[str, Any]:
        # google.rpc.Status without `details`: inline `JobError.details` must be list[str] or
        # absent, dicts there crash `batches.get` (pitfall 11).
        return {"code": self.code, "message": self.message}


FileExists = Callable[[str], bool]
"""Looks up a file id (without `files/`) among the files the emulator holds, or (Vertex) a
whole gs:// URI in Cloud Storage."""


def camelize(value: Any) -> Any:
    """Recursively rename snake_case keys to camelCase (the proto-JSON parser accepts both)."""
    if isinstance(value, dict):
        return {_camel(str(k)): camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def file_id_from_uri(uri: str) -> str | None:
    """`files/abc`, `https://host/v1beta/files/abc` → `abc`; None when no file name is in it."""
    match = _FILE_ID.search(uri)
    return None if match is None else match.group(1)


def is_image_model(model: str) -> bool:
    name = model.removeprefix("models/")
    return "nano-banana" in name or "image" in name


def thinks_by_default(model: str) -> bool:
    """Gemini 2.5 Pro/Flash and 3 think unless told not to; Flash-Lite and image models do not."""
    name = model.removeprefix("models/")
    if is_image_model(name) or "lite" in name:
        return False
    return name.startswith(("gemini-2.5-", "gemini-3"))


CACHED_CONTENT_TOKENS = 1024
"""What a request naming `cachedContent` adds to its prompt, all of it reported as cached."""


def _thinking_tokens(model: str, config: dict[str, Any], digest: bytes) -> int:
    """Deterministic thinking tokens, within `thinkingConfig.thinkingBudget` (0 turns it off
    where the model allows; -1 is dynamic)."""
    thinking = config.get("thinkingConfig")
    budget = thinking.get("thinkingBudget") if isinstance(thinking, dict) else None
    if not thinks_by_default(model) or budget == 0:
        return 0
    tokens = 64 + int.from_bytes(digest[4:6], "big") % 448
    return min(tokens, budget) if isinstance(budget, int) and budget > 0 else tokens


def _usage(prompt: int, output: int, thinking: int, cached: int) -> dict[str, Any]:
    """`usageMetadata` as the service reports it: zero counts are left out, cached tokens are
    part of the prompt, and the total adds thinking."""
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": output}
    if thinking:
        usage["thoughtsTokenCount"] = thinking
    if cached:
        usage["cachedContentTokenCount"] = cached
    usage["totalTokenCount"] = prompt + output + thinking
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage


def embedding_dimensions(model: str) -> int:
    return 3072 if "gemini-embedding" in model else 768


def _digest(model: str, request: Any) -> bytes:
    canonical = json.dumps(
        [model.removeprefix("models/"), request], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).digest()


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _check_parts(parts: Any, where: str, file_exists: FileExists) -> tuple[str, int]:  # noqa: C901 -- a branch per part kind
    """Validate a `parts` list; return its text and the count of media parts."""
    if not isinstance(parts, list) or not parts:
        raise RequestError(INVALID_ARGUMENT, f"{where}.parts must be a non-empty list")
    texts: list[str] = []
    media = 0
    for index, part in enumerate(parts):
        here = f"{where}.parts[{index}]"
        if not isinstance(part, dict):
            raise RequestError(INVALID_ARGUMENT, f"Invalid value at '{here}': expected an object")
        if "text" in part:
            if not isinstance(part["text"], str):
                raise RequestError(
                    INVALID_ARGUMENT, f"Invalid value at '{here}.text': expected a string"
                )
            texts.append(part["text"])
        elif "fileData" in part:
            data = part["fileData"]
            uri = data.get("fileUri") if isinstance(data, dict) else None
            if not isinstance(uri, str) or not uri:
                raise RequestError(INVALID_ARGUMENT, f"{here}.fileData.fileUri is required")
            # Vertex names Cloud Storage objects, which its lookup answers for whole URIs.
            file_id = uri if uri.startswith("gs://") else file_id_from_uri(uri)
            if file_id is None or not file_exists(file_id):
                raise RequestError(INVALID_ARGUMENT, f"File {uri} not found or not accessible.")
            media += 1
        elif "inlineData" in part:
            data = part["inlineData"]
            payload = data.get("data") if isinstance(data, dict) else None
            if not isinstance(payload, str):
                raise RequestError(INVALID_ARGUMENT, f"{here}.inlineData.data is required")
            try:
                base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RequestError(
                    INVALID_ARGUMENT, f"Invalid base64 in '{here}.inlineData.data'"
                ) from exc
            media += 1
        elif not part.keys() & {
            "functionCall",
            "functionResponse",
            "executableCode",
            "codeExecutionResult",
            "thought",
            "thoughtSignature",
        }:
            raise RequestError(INVALID_ARGUMENT, f"Invalid value at '{here}': a part needs data")
    return " ".join(texts), media


def _check_contents(contents: Any, file_exists: FileExists) -> tuple[str, int]:
    if not isinstance(contents, list) or not contents:
        raise RequestError(INVALID_ARGUMENT, "contents is not specified")
    texts: list[str] = []
    media = 0
    for index, content in enumerate(contents):
        if not isinstance(content, dict):
            raise RequestError(INVALID_ARGUMENT, f"Invalid value at 'contents[{index}]'")
        text, count = _check_parts(content.get("parts"), f"contents[{index}]", file_exists)
        texts.append(text)
        media += count
    return " ".join(texts), media


def generate(model: str, raw_request: Any, file_exists: FileExists) -> dict[str, Any]:
    """A GenerateContentResponse (camelCase REST shape) for one request.

    Raises:
        RequestError: the request is malformed or names an unknown file.
    """
    if not isinstance(raw_request, dict):
        raise RequestError(INVALID_ARGUMENT, "request must be a JSON object")
    request = camelize(raw_request)
    prompt, media = _check_contents(request.get("contents"), file_exists)
    system = request.get("systemInstruction")
    if system is not None:
        if not isinstance(system, dict):
            raise RequestError(INVALID_ARGUMENT, "Invalid value at 'system_instruction'")
        _check_parts(system.get("parts"), "systemInstruction", file_exists)
    config = request.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise RequestError(INVALID_ARGUMENT, "Invalid value at 'generation_config'")
    digest = _digest(model, request)
    rng = random.Random(digest)
    words = [rng.choice(_VOCABULARY) for _ in range(8 + digest[0] % 16)]
    max_tokens = config.get("maxOutputTokens")
    if isinstance(max_tokens, int) and max_tokens > 0:
        words = words[: max(1, max_tokens)]
    snippet = " ".join(prompt.split())[:40]
    text = f"[{model.removeprefix('models/')} {digest.hex()[:8]}] {snippet} → {' '.join(words)}."
    if config.get("responseMimeType") == "application/json":
        text = json.dumps({"answer": text})
    parts: list[dict[str, Any]] = [{"text": text}]
    output_tokens = _tokens(text)
    if is_image_model(model):
        png = solid_png(16, 16, (digest[1], digest[2], digest[3]))
        parts.append(
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
        )
        output_tokens += 1290  # what the service bills per generated image
    prompt_tokens = _tokens(prompt) + 258 * media  # 258 tokens per image, as the service counts
    cached = CACHED_CONTENT_TOKENS if isinstance(request.get("cachedContent"), str) else 0
    usage = _usage(
        prompt_tokens + cached, output_tokens, _thinking_tokens(model, config, digest), cached
    )
    return {
        "candidates": [
            {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": usage,
        "modelVersion": model.removeprefix("models/"),
        "responseId": base64.urlsafe_b64encode(digest[:12]).decode().rstrip("="),
    }


def embed(model: str, raw_request: Any, file_exists: FileExists) -> dict[str, Any]:
    """An EmbedContentResponse item `{"embedding": {"values"}, "tokenCount"}` for one request.

    Accepts the `EmbedContentRequest` shape (`content`, `outputDimensionality`, `taskType`,
    `title` directly under `request`), and also `contents` (a list) as the seed guide writes it.

    Raises:
        RequestError: the request is malformed or asks for an impossible dimension.
    """
    if not isinstance(raw_request, dict):
        raise RequestError(INVALID_ARGUMENT, "request must be a JSON object")
    request = camelize(raw_request)
    content = request.get("content")
    if content is not None:
        if not isinstance(content, dict):
            raise RequestError(INVALID_ARGUMENT, "Invalid value at 'content'")
        text, _ = _check_parts(content.get("parts"), "content", file_exists)
    else:
        text, _ = _check_contents(request.get("contents"), file_exists)
    default = embedding_dimensions(model)
    dimensions = request.get("outputDimensionality", default)
    if (
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= 3072
    ):
        raise RequestError(INVALID_ARGUMENT, "output_dimensionality must be between 1 and 3072")
    rng = random.Random(
        _digest(
            model,
            {"text": text, "taskType": request.get("taskType"), "title": request.get("title")},
        )
    )
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return {
        "embedding": {"values": [round(v / norm, 9) for v in values]},
        "tokenCount": str(_tokens(text)),  # int64 on the wire: a JSON string (pitfall 22)
    }


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid RGB PNG built with zlib + struct: signature, IHDR, one IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width  # filter type 0 per scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
