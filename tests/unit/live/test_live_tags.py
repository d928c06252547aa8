"""The identity tag round-trips through display_name, which is how apply adopts after a crash."""

from __future__ import annotations

from reconciler.live.tags import (
    DISPLAY_NAME_MAX,
    IdentityTag,
    parse_tag,
    project_token,
    project_tokens,
)


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


def test_a_tag_names_its_project_and_round_trips() -> None:
    token = project_token("evals")
    tag = IdentityTag("eval", "0123456789ab", 3, 2, 1, project=token)
    assert str(tag) == f"[rc:{token}/eval@0123456789ab:3.s2r1]"
    assert parse_tag(tag.display_name("nightly")) == tag


def test_a_job_is_owned_only_by_the_project_whose_token_it_carries() -> None:
    ours, theirs = project_tokens("evals", "lineage-a"), project_tokens(None, "lineage-b")
    tag = IdentityTag("eval", "0123456789ab", 1, project=project_token("evals"))
    assert tag.owned_by(ours) and not tag.owned_by(theirs)
    # A project that set `project:` later still owns what its lineage's token made.
    older = IdentityTag("eval", "0123456789ab", 1, project=project_token("lineage-a"))
    assert older.owned_by(ours)
    assert len({project_token("a"), project_token("b")}) == 2


def test_a_tag_without_a_project_is_owned_only_where_the_state_records_it() -> None:
    legacy = parse_tag("nightly [rc:eval@0123456789ab:1]")
    assert legacy is not None and legacy.project is None
    ours = project_tokens(None, "lineage-a")
    assert not legacy.owned_by(ours)
    assert legacy.owned_by(ours, recorded_tags={"[rc:eval@0123456789ab:1]"})


def test_the_longest_resource_name_still_leaves_room_for_the_tag() -> None:
    tag = IdentityTag("r" * 63, "a" * 12, 999, 999, 999, project=project_token("p"))
    name = tag.display_name("a user's long display name " * 10)
    assert len(name) <= DISPLAY_NAME_MAX and parse_tag(name) == tag
