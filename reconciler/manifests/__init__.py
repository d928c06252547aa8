"""Manifests: YAML + JSONL -> Desired, every finding located at file:line:col; JSON Schema export.

Modules: `model` (the manifest format), `desired` (what the planner consumes), `loader`
(`load_desired`, `validate_paths`), `jsonl` (`scan_jsonl`, streamed input checks), `requests` (the
request schema), `paths` (confinement, media), `schema` (JSON Schema documents).
"""
