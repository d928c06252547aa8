"""The published schema of the JSON event lines is the one the code generates."""

from __future__ import annotations

from pathlib import Path

from reconciler.cli.event_stream import events_schema_text

SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "events.schema.json"


def test_the_committed_events_schema_is_what_the_code_generates() -> None:
    assert SCHEMA.read_text() == events_schema_text(), (
        "run: reconciler schema --events -o schemas/events.schema.json"
    )
