"""`reconciler emulator serve` flags map onto EmulatorSettings."""

from __future__ import annotations

from click.testing import CliRunner

from reconciler.cli.emulator_cmd import emulator


def test_serve_help_lists_fault_and_quirk_flags() -> None:
    result = CliRunner().invoke(emulator, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--job-seconds",
        "--api-key",
        "--rate-429",
        "--drop-rate",
        "--fail-next-jobs",
        "--results-delay",
        "--shuffle-inline-responses",
        "--undeletable-result-files",
    ):
        assert flag in result.output


def test_serve_refuses_a_probability_above_one() -> None:
    result = CliRunner().invoke(emulator, ["serve", "--rate-429", "2", "--data-dir", "unused"])
    assert result.exit_code != 0
    assert "rate_429 must be within [0, 1]" in result.output
