"""Integrity of a decoded state document: what its schema alone cannot say.

A hand-edited or damaged state can be valid JSON of the right shape and still be wrong in ways
that make plans lie: a record filed under another resource's key (the planner then says "forget
a" and the record stays), two records claiming one job (both would refresh, collect or cancel
it), a blob reference that is no content address. Each is refused on read, naming the record.
"""

from __future__ import annotations

import re

from reconciler.jsonsafe import MAX_JSON_DEPTH, depth_exceeds
from reconciler.state.document import State
from reconciler.state.migrations import StateFormatError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_integrity(state: State, *, source: str) -> None:
    """Raise unless every record is filed under its own name, every job has one owner, blob
    references are content addresses and recorded fields nest within MAX_JSON_DEPTH.

    Raises:
        StateFormatError: the first problem, naming the record and how to repair it.
    """
    owners: dict[str, str] = {}
    for key, record in state.resources.items():
        where = f"{source} is corrupt: record `{key}`"
        if record.name != key:
            raise StateFormatError(
                f"{where} names itself `{record.name}`; a record's key and name must agree",
                hint="restore the state from its backup or version control, or fix the name",
            )
        if record.key_digests_ref is not None and not _SHA256.fullmatch(record.key_digests_ref):
            raise StateFormatError(
                f"{where}: `key_digests_ref` {record.key_digests_ref!r} is not a sha256 address"
            )
        if depth_exceeds(record.replacing, MAX_JSON_DEPTH) or depth_exceeds(
            record.in_place, MAX_JSON_DEPTH
        ):
            raise StateFormatError(f"{where}: its recorded fields nest too deep")
        for attempt in record.attempts:
            job = attempt.job_name
            if job is None:
                continue
            owner = owners.setdefault(job, key)
            if owner != key:
                raise StateFormatError(
                    f"{where} claims job {job}, which record `{owner}` also claims; "
                    "a job belongs to one resource",
                    hint="remove the wrong attempt with `reconciler state` or restore a backup",
                )
