"""`python -m reconciler.emulator`: every setting defaults as EmulatorSettings does, so the
benchmarks' emulator is as strict as the service unless a flag says otherwise."""

from __future__ import annotations

import dataclasses

from reconciler.emulator.__main__ import parse
from reconciler.emulator.settings import EmulatorSettings


def test_the_runner_without_flags_has_the_default_settings() -> None:
    runner, settings = parse([])
    assert settings == EmulatorSettings()
    assert settings.undeletable_result_files is True
    assert runner["port"] == 8765


def test_a_boolean_setting_is_turned_either_way_by_its_flag() -> None:
    _, off = parse(["--no-undeletable-result-files", "--accept-unknown-models"])
    assert off == dataclasses.replace(
        EmulatorSettings(), undeletable_result_files=False, accept_unknown_models=True
    )
