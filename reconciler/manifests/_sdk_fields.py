"""Field names of the REST request types, derived from google.genai.types (snake_case spelling).

Generated once from the SDK rather than imported at run time: only `live/gemini.py` may import
google.genai, and importing it costs more than validating a small project. The test
`tests/unit/manifests/test_sdk_fields.py` re-derives these sets from the installed SDK and fails,
printing the new values, when the SDK adds or removes a field.
"""

from __future__ import annotations

GENERATE_REQUEST_FIELDS = frozenset(
    {
        "cached_content",
        "contents",
        "generation_config",
        "labels",
        "model",
        "model_armor_config",
        "safety_settings",
        "service_tier",
        "system_instruction",
        "tool_config",
        "tools",
    }
)
"""Top level of a REST GenerateContentRequest: GenerateContentConfig's fields that the SDK sends
beside `generationConfig` rather than inside it, plus `contents`, `generationConfig`, `model`."""

GENERATION_CONFIG_FIELDS = frozenset(
    {
        "audio_timestamp",
        "audio_transcription_config",
        "candidate_count",
        "enable_affective_dialog",
        "enable_enhanced_civic_answers",
        "frequency_penalty",
        "image_config",
        "logprobs",
        "max_output_tokens",
        "media_resolution",
        "model_selection_config",
        "presence_penalty",
        "response_format",
        "response_json_schema",
        "response_logprobs",
        "response_mime_type",
        "response_modalities",
        "response_schema",
        "routing_config",
        "seed",
        "speech_config",
        "stop_sequences",
        "temperature",
        "thinking_config",
        "top_k",
        "top_p",
        "translation_config",
    }
)
"""types.GenerationConfig's fields, plus `image_config` (the SDK nests it there on the wire)."""

EMBED_REQUEST_FIELDS = frozenset(
    {
        "audio_track_extraction",
        "auto_truncate",
        "content",
        "document_ocr",
        "mime_type",
        "model",
        "output_dimensionality",
        "task_type",
        "title",
    }
)
"""Top level of a REST EmbedContentRequest: types.EmbedContentConfig's fields sit directly under
`request` (not in a config object), beside `content` and `model`."""

CONTENT_FIELDS = frozenset({"parts", "role"})
"""types.Content."""

PART_FIELDS = frozenset(
    {
        "audio_metadata",
        "audio_transcription",
        "code_execution_result",
        "document_metadata",
        "executable_code",
        "file_data",
        "function_call",
        "function_response",
        "inline_data",
        "media_processing",
        "media_resolution",
        "part_metadata",
        "speech_metadata",
        "spreadsheet_metadata",
        "text",
        "thought",
        "thought_signature",
        "tool_call",
        "tool_response",
        "video_metadata",
    }
)
"""types.Part."""

BLOB_FIELDS = frozenset({"data", "display_name", "mime_type"})
"""types.Blob (`inlineData`)."""

FILE_DATA_FIELDS = frozenset({"display_name", "file_uri", "mime_type"})
"""types.FileData (`fileData`); reconciler adds `path` for a local file that apply uploads."""
