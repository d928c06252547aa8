"""The request field sets committed in `_sdk_fields` still match the installed google-genai SDK."""

from __future__ import annotations

from reconciler.manifests import _sdk_fields as committed
from reconciler.manifests.requests import PART_DATA_FIELDS

# Fields of GenerateContentConfig that configure the SDK itself and never reach the wire.
SDK_ONLY = {
    "http_options",
    "should_return_http_response",
    "automatic_function_calling",
    "automatic_continuation",
    "continuation_token",
    "store",
    "generation_output_config",
}


def _fields(model: type) -> set[str]:
    return set(model.model_fields) - {"http_options"}  # type: ignore[attr-defined]


def test_field_sets_are_derived_from_the_sdk_types() -> None:
    from google.genai import types

    generation = _fields(types.GenerationConfig) | {"image_config"}
    top = (_fields(types.GenerateContentConfig) - generation - SDK_ONLY) | {
        "contents",
        "generation_config",
        "model",
    }
    derived = {
        "GENERATE_REQUEST_FIELDS": top,
        "GENERATION_CONFIG_FIELDS": generation,
        "EMBED_REQUEST_FIELDS": _fields(types.EmbedContentConfig) | {"content", "model"},
        "CONTENT_FIELDS": _fields(types.Content),
        "PART_FIELDS": _fields(types.Part),
        "BLOB_FIELDS": _fields(types.Blob),
        "FILE_DATA_FIELDS": _fields(types.FileData),
    }
    stale = {
        name: sorted(value)
        for name, value in derived.items()
        if set(getattr(committed, name)) != value
    }
    assert stale == {}, f"update reconciler/manifests/_sdk_fields.py: {stale}"


def test_part_data_fields_are_part_fields() -> None:
    assert PART_DATA_FIELDS <= committed.PART_FIELDS
