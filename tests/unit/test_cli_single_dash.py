"""cli/single_dash.py: which tokens are Terraform-style single-dash flags, and their spelling here."""

from __future__ import annotations

import pytest

from reconciler.cli.single_dash import suggestion


@pytest.mark.parametrize(
    ("token", "meant"),
    [
        ("-auto-approve", "--auto-approve"),
        ("-json", "--format json"),
        ("-target=eval", "--target eval"),
        ("-out=plan.bin", "--out plan.bin"),
        ("-refresh-only", "--refresh-only"),
        ("-chdir=repo", "-C repo"),
    ],
)
def test_a_single_dash_long_flag_is_given_this_clis_spelling(token: str, meant: str) -> None:
    assert suggestion(token) == meant


@pytest.mark.parametrize("token", ["--auto-approve", "-C", "-Crepo", "-v", "-vv", "-h", "-", "-1"])
def test_short_options_long_options_and_values_are_left_alone(token: str) -> None:
    assert suggestion(token) is None
