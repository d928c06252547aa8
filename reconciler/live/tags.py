"""The identity tag that marks a job as reconciler's: resource name, spec hash, attempt, shard.

It lives in the job's display_name (the only free-form field the Developer API echoes back), so
a job created just before a crash can be found and adopted instead of created twice.

`[rc:<resource>@<spec hash 12>:<attempt>]`, with `.s<shard>` for one shard of a sharded input and
`r<rerun>` after it when that shard alone was run again (a failed shard is resubmitted without
its siblings, and stays part of the same attempt, so adoption by tag rebuilds the group).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SPEC_HASH_CHARS = 12
_TAG = re.compile(
    r"\[rc:(?P<resource>[a-z0-9][a-z0-9-]*)@(?P<hash>[0-9a-f]{12}):(?P<attempt>\d+)(?:\.s(?P<shard>\d+)(?:r(?P<rerun>\d+))?)?\]$"
)
DISPLAY_NAME_MAX = 128
"""The service's display_name limit is not documented; we stay well inside typical proto limits."""


@dataclass(frozen=True, slots=True)
class IdentityTag:
    resource: str
    spec_hash: str
    """The first 12 hex characters of the spec hash."""
    attempt: int
    shard: int | None = None
    rerun: int = 0
    """How many times this shard was run again alone within the attempt (0: the first run)."""

    def __str__(self) -> str:
        shard = f".s{self.shard}" if self.shard is not None else ""
        if self.shard is not None and self.rerun:
            shard += f"r{self.rerun}"
        return f"[rc:{self.resource}@{self.spec_hash[:SPEC_HASH_CHARS]}:{self.attempt}{shard}]"

    def display_name(self, user_display_name: str | None) -> str:
        """The display_name to send: the user's text (trimmed to fit), then the tag."""
        tag = str(self)
        base = (user_display_name or self.resource).strip()
        room = DISPLAY_NAME_MAX - len(tag) - 1
        return f"{base[:room]} {tag}" if room > 0 else tag


def parse_tag(display_name: str | None) -> IdentityTag | None:
    """The tag at the end of a display_name, or None for jobs reconciler did not create."""
    if not display_name:
        return None
    match = _TAG.search(display_name)
    if match is None:
        return None
    shard = match.group("shard")
    rerun = match.group("rerun")
    return IdentityTag(
        resource=match.group("resource"),
        spec_hash=match.group("hash"),
        attempt=int(match.group("attempt")),
        shard=int(shard) if shard is not None else None,
        rerun=int(rerun) if rerun is not None else 0,
    )
