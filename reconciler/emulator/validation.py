"""The request messages of the Files and Batches routes, for `protojson` to read bodies against.

Field sets and types are the v1beta messages: `File` and `CreateFileRequest` from googleapis'
`google/ai/generativelanguage/v1beta/file.proto` and `file_service.proto`; `Content`, `Part`,
`Blob`, `FileData` from `content.proto`; the batch messages (`GenerateContentBatch`,
`InputConfig`, `InlinedRequest(s)`, `EmbedContentBatch`, …) from the v1beta discovery document
and the SDK's generated converters (google/genai/batches.py, files.py, models.py), which also
give `GenerateContentRequest`'s top-level fields. Output-only fields are fields all the same:
the service reads and ignores them. Messages this emulator does not model field by field
(`GenerationConfig`, `Tool`, `SafetySetting`, the outputs, …) are `open`: checked as objects
only, so a valid name in them is never refused. Request lines inside JSONL files are not checked
here: they are read when the job runs, and a bad line is a per-request error.
"""

from __future__ import annotations

from typing import Any

from reconciler.emulator.protojson import Field, Message, Schema, Violation


def _m(kind: str, ref: str = "", repeated: bool = False) -> Field:
    return Field(kind, ref, repeated)


_STRING = _m("string")
_TIME = _m("timestamp")
_OPEN = (
    "GenerationConfig",
    "Tool",
    "ToolConfig",
    "SafetySetting",
    "GenerateContentBatchOutput",
    "EmbedContentBatchOutput",
    "BatchStats",
    "EmbedContentBatchStats",
    "WebhookConfig",
    "VideoMetadata",
    "Status",
    "PartSubMessage",
)


def _batch(name: str, input_config: str, output: str, stats: str) -> Message:
    return Message(
        name,
        {
            "name": _STRING,
            "model": _STRING,
            "display_name": _STRING,
            "input_config": _m("message", input_config),
            "output": _m("message", output),
            "create_time": _TIME,
            "end_time": _TIME,
            "update_time": _TIME,
            "batch_stats": _m("message", stats),
            "state": _m("enum", "BatchState"),
            "priority": _m("int64"),
            "webhook_config": _m("message", "WebhookConfig"),
        },
    )


_PART_OPEN = (
    "function_call",
    "function_response",
    "executable_code",
    "code_execution_result",
    "video_metadata",
    "part_metadata",
    "media_resolution",
    "audio_metadata",
    "audio_transcription",
    "document_metadata",
    "media_processing",
    "speech_metadata",
    "spreadsheet_metadata",
    "tool_call",
    "tool_response",
)

_MESSAGES = {
    "BatchGenerateContentRequest": Message(
        "BatchGenerateContentRequest", {"batch": _m("message", "GenerateContentBatch")}
    ),
    "AsyncBatchEmbedContentRequest": Message(
        "AsyncBatchEmbedContentRequest", {"batch": _m("message", "EmbedContentBatch")}
    ),
    "GenerateContentBatch": _batch(
        "GenerateContentBatch", "InputConfig", "GenerateContentBatchOutput", "BatchStats"
    ),
    "EmbedContentBatch": _batch(
        "EmbedContentBatch",
        "InputEmbedContentConfig",
        "EmbedContentBatchOutput",
        "EmbedContentBatchStats",
    ),
    "InputConfig": Message(
        "InputConfig",
        {"file_name": _STRING, "requests": _m("message", "InlinedRequests")},
    ),
    "InputEmbedContentConfig": Message(
        "InputEmbedContentConfig",
        {"file_name": _STRING, "requests": _m("message", "InlinedEmbedContentRequests")},
    ),
    "InlinedRequests": Message(
        "InlinedRequests", {"requests": _m("message", "InlinedRequest", repeated=True)}
    ),
    "InlinedEmbedContentRequests": Message(
        "InlinedEmbedContentRequests",
        {"requests": _m("message", "InlinedEmbedContentRequest", repeated=True)},
    ),
    "InlinedRequest": Message(
        "InlinedRequest",
        {"request": _m("message", "GenerateContentRequest"), "metadata": _m("struct")},
    ),
    "InlinedEmbedContentRequest": Message(
        "InlinedEmbedContentRequest",
        {"request": _m("message", "EmbedContentRequest"), "metadata": _m("struct")},
    ),
    "GenerateContentRequest": Message(
        "GenerateContentRequest",
        {
            "model": _STRING,
            "contents": _m("message", "Content", repeated=True),
            "system_instruction": _m("message", "Content"),
            "tools": _m("message", "Tool", repeated=True),
            "tool_config": _m("message", "ToolConfig"),
            "safety_settings": _m("message", "SafetySetting", repeated=True),
            "generation_config": _m("message", "GenerationConfig"),
            "cached_content": _STRING,
            "labels": _m("struct"),
            "service_tier": _m("value"),
            "store": _m("bool"),
        },
    ),
    "EmbedContentRequest": Message(
        "EmbedContentRequest",
        {
            "model": _STRING,
            "content": _m("message", "Content"),
            "task_type": _m("enum", "TaskType"),
            "title": _STRING,
            "output_dimensionality": _m("int32"),
        },
    ),
    "Content": Message("Content", {"parts": _m("message", "Part", repeated=True), "role": _STRING}),
    "Part": Message(
        "Part",
        {
            "text": _STRING,
            "inline_data": _m("message", "Blob"),
            "file_data": _m("message", "FileData"),
            "thought": _m("bool"),
            "thought_signature": _m("bytes"),
            **{name: _m("message", "PartSubMessage") for name in _PART_OPEN},
        },
    ),
    "Blob": Message("Blob", {"mime_type": _STRING, "data": _m("bytes")}),
    "FileData": Message("FileData", {"mime_type": _STRING, "file_uri": _STRING}),
    "CreateFileRequest": Message("CreateFileRequest", {"file": _m("message", "File")}),
    "File": Message(
        "File",
        {
            "name": _STRING,
            "display_name": _STRING,
            "mime_type": _STRING,
            "size_bytes": _m("int64"),
            "create_time": _TIME,
            "update_time": _TIME,
            "expiration_time": _TIME,
            "sha256_hash": _m("bytes"),
            "uri": _STRING,
            "download_uri": _STRING,
            "state": _m("enum", "FileState"),
            "source": _m("enum", "FileSource"),
            "video_metadata": _m("message", "VideoMetadata"),
            "error": _m("message", "Status"),
        },
    ),
    "RegisterFilesRequest": Message("RegisterFilesRequest", {"uris": _m("string", repeated=True)}),
    **{name: Message(name, open=True) for name in _OPEN},
}

_ENUMS = {
    "BatchState": frozenset(
        "BATCH_STATE_" + s
        for s in (
            "UNSPECIFIED",
            "PENDING",
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
            "CANCELLED",
            "EXPIRED",
        )
    ),
    "TaskType": frozenset(
        {
            "TASK_TYPE_UNSPECIFIED",
            "RETRIEVAL_QUERY",
            "RETRIEVAL_DOCUMENT",
            "SEMANTIC_SIMILARITY",
            "CLASSIFICATION",
            "CLUSTERING",
            "QUESTION_ANSWERING",
            "FACT_VERIFICATION",
            "CODE_RETRIEVAL_QUERY",
        }
    ),
    "FileState": frozenset({"STATE_UNSPECIFIED", "PROCESSING", "ACTIVE", "FAILED"}),
    "FileSource": frozenset({"SOURCE_UNSPECIFIED", "UPLOADED", "GENERATED", "REGISTERED"}),
}

SCHEMA = Schema("google.ai.generativelanguage", _MESSAGES, _ENUMS)


def create_batch(
    body: Any, embed: bool, version: str = "v1beta", *, accept_unknown: bool = False
) -> list[Violation]:
    """Problems of a `batchGenerateContent` / `asyncBatchEmbedContent` body
    (`accept_unknown`: the emulator's leniency setting, unknown names let through)."""
    root = "AsyncBatchEmbedContentRequest" if embed else "BatchGenerateContentRequest"
    return SCHEMA.check(body, root, version, accept_unknown=accept_unknown)


def update_batch(body: Any, embed: bool, version: str = "v1beta") -> list[Violation]:
    """Problems of an update body (the batch resource itself)."""
    return SCHEMA.check(body, "EmbedContentBatch" if embed else "GenerateContentBatch", version)


def upload_start(body: Any, version: str = "v1beta") -> list[Violation]:
    """Problems of an upload's metadata (`{"file": File}`)."""
    return SCHEMA.check(body, "CreateFileRequest", version)


def register_files(body: Any, version: str = "v1beta") -> list[Violation]:
    return SCHEMA.check(body, "RegisterFilesRequest", version)
