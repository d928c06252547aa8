"""Ids the emulator makes: the shape the SDK accepts (pitfall 15) and no repeats."""

from __future__ import annotations

import string

from reconciler.emulator.store import new_id


def test_new_ids_are_lower_case_alphanumerics_of_the_asked_length() -> None:
    allowed = set(string.ascii_lowercase + string.digits)
    for length in (1, 12, 32, 36):
        ids = [new_id(length) for _ in range(200)]
        assert all(len(i) == length and set(i) <= allowed for i in ids)


def test_new_ids_do_not_repeat_and_use_the_whole_alphabet() -> None:
    ids = [new_id(36) for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert set("".join(ids)) == set(string.ascii_lowercase + string.digits)
