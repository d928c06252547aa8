"""The identity tag round-trips through display_name, which is how apply adopts after a crash."""

from __future__ import annotations

from reconciler.live.tags import DISPLAY_NAME_MAX, IdentityTag, parse_tag


def test_tag_round_trips_through_display_name() -> None:
    tag = IdentityTag(resource="my-job", spec_hash="0123456789abcdef", attempt=2, shard=3)
    name = tag.display_name("Nightly eval")
    assert name.startswith("Nightly eval ")
    parsed = parse_tag(name)
    assert parsed == IdentityTag(resource="my-job", spec_hash="0123456789ab", attempt=2, shard=3)


def test_long_user_names_are_trimmed_so_the_tag_survives() -> None:
    tag = IdentityTag(resource="r", spec_hash="a" * 12, attempt=1)
    name = tag.display_name("x" * 500)
    assert len(name) <= DISPLAY_NAME_MAX
    assert parse_tag(name) == tag


def test_foreign_display_names_have_no_tag() -> None:
    assert parse_tag(None) is None
    assert parse_tag("someone else's job") is None
    assert parse_tag("[rc:Bad@zz:1]") is None
