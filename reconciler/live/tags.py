"""The identity tag that marks a job as reconciler's: project, resource, spec hash, attempt, shard.

It lives in the job's display_name (the only free-form field the Developer API echoes back), so
a job created just before a crash can be found and adopted instead of created twice.

`[rc:<project>/<resource>@<spec hash 12>:<attempt>]`, with `.s<shard>` for one shard of a sharded
input and `r<rerun>` after it when that shard alone was run again (a failed shard is resubmitted
without its siblings, and stays part of the same attempt, so adoption by tag rebuilds the group).

`<project>` is a short digest of the project's identity (its `project:` id, else its state
lineage): two projects on one service may declare the same resource with the same input, and
each must adopt, cancel and forget only its own jobs. Tags written before the project was part
of them (`[rc:<resource>@...]`) parse with `project=None`; they are recognised only where the
state itself records the intent that made them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass

SPEC_HASH_CHARS = 12
PROJECT_CHARS = 8
_TAG = re.compile(
    r"\[rc:(?:(?P<project>[0-9a-f]{8})/)?(?P<resource>[a-z0-9][a-z0-9-]*)@(?P<hash>[0-9a-f]{12}):(?P<attempt>\d+)(?:\.s(?P<shard>\d+)(?:r(?P<rerun>\d+))?)?\]$"
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
    project: str | None = None
    """`project_token` of the project that made the job; None in tags written before it was part
    of them."""

    def __str__(self) -> str:
        shard = f".s{self.shard}" if self.shard is not None else ""
        if self.shard is not None and self.rerun:
            shard += f"r{self.rerun}"
        owner = f"{self.project}/" if self.project is not None else ""
        spec = self.spec_hash[:SPEC_HASH_CHARS]
        return f"[rc:{owner}{self.resource}@{spec}:{self.attempt}{shard}]"

    def owned_by(self, tokens: Collection[str], recorded_tags: Collection[str] = ()) -> bool:
        """Whether this project made the job: its tag names one of the project's `tokens`, or
        (a tag older than project tokens) the project's state records exactly this tag."""
        if self.project is not None:
            return self.project in tokens
        return str(self) in recorded_tags

    def display_name(self, user_display_name: str | None) -> str:
        """The display_name to send: the user's text (trimmed to fit), then the tag."""
        tag = str(self)
        base = (user_display_name or self.resource).strip()
        room = DISPLAY_NAME_MAX - len(tag) - 1
        return f"{base[:room]} {tag}" if room > 0 else tag


def project_token(identity: str) -> str:
    """The short, fixed-length name of a project in its tags (see `State.identity`)."""
    return hashlib.sha256(f"reconciler-project:{identity}".encode()).hexdigest()[:PROJECT_CHARS]


def project_tokens(project: str | None, lineage: str) -> frozenset[str]:
    """Every token this project's jobs may carry: its project id's and its lineage's, so jobs
    made before `project:` was set stay its own."""
    return frozenset(project_token(identity) for identity in (project, lineage) if identity)


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
        project=match.group("project"),
    )
