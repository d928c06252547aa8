"""The error tree every user-facing failure belongs to; exit codes.

    ReconcilerError                 one-line message, optional location and hint
    ├── ManifestError               a manifest or its input is invalid (carries every Diagnostic)
    ├── ConfigError                 reconciler.yaml, flags or RECONCILER_* variables are invalid
    ├── StateError                  the state cannot be read, written or trusted
    │   ├── StateLockedError        another process holds the lock (names the holder)
    │   ├── StaleWriteError         the state moved on since it was read (serial mismatch)
    │   ├── StateWriteLostError     apply could not save a step: the run stops at once
    │   └── StalePlanError          a saved plan was made against another state
    ├── PlanError                   the plan cannot be made (guardrail, unresolvable conflict)
    ├── ServiceError                a call to the batch service failed
    │   ├── TransientServiceError   429, 5xx, timeouts, resets: worth retrying
    │   └── PermanentServiceError   4xx other than 429: retrying will not help
    └── ApplyError                  one or more resources failed; aggregates per-resource errors

Raise at the fault; only `reconciler.cli` catches and prints. Anything that is not a
ReconcilerError reaching the CLI is a bug.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    """Process exit codes, as Terraform: `--detailed-exitcode` adds CHANGES."""

    OK = 0
    ERROR = 1
    CHANGES = 2


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A position in a user's file; line and column are 1-based, 0 means unknown."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.path}:{self.line}:{self.column}"
        if self.line:
            return f"{self.path}:{self.line}"
        return self.path


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about user input, collected rather than raised so a run reports all of them."""

    message: str
    location: SourceLocation | None = None
    severity: Severity = Severity.ERROR
    hint: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        text = f"{prefix}{self.severity.value}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ReconcilerError(Exception):
    """Root of every error meant for the user: a one-line message, maybe a location and a hint."""

    def __init__(
        self,
        message: str,
        *,
        location: SourceLocation | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        return f"{prefix}{self.message}"


class ManifestError(ReconcilerError):
    """Manifests or their inputs are invalid; `diagnostics` lists every problem found."""

    def __init__(self, diagnostics: Sequence[Diagnostic], message: str | None = None) -> None:
        self.diagnostics = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.severity is Severity.ERROR]
        first = errors[0] if errors else (self.diagnostics[0] if self.diagnostics else None)
        summary = message or (
            f"{len(errors)} error(s) in manifests"
            if len(errors) != 1 or first is None
            else first.message
        )
        super().__init__(summary, location=first.location if first and len(errors) == 1 else None)


class ConfigError(ReconcilerError):
    """The project configuration (reconciler.yaml, flags, RECONCILER_* variables) is invalid."""


class StateError(ReconcilerError):
    """The state cannot be read, written or trusted."""


class StateLockedError(StateError):
    """The state lock is held by someone else; the message names the holder."""


class StaleWriteError(StateError):
    """A write was refused because the stored state has a different serial than the one read."""


class StateWriteLostError(StateError):
    """Apply could not save a step that changed the world (stale serial, lost lock, unreachable
    backend). Going on would change the world without recording it, so the whole run stops."""

    def __init__(self, cause: ReconcilerError | OSError) -> None:
        super().__init__(
            f"apply stopped: a state write was lost ({cause}); what it did since its last "
            "saved step is not recorded",
            hint="check who else writes this state (`reconciler force-unlock` breaks live "
            "locks only with --force); the next apply adopts jobs it created by their tags",
        )
        self.cause = cause


class StalePlanError(StateError):
    """A saved plan was made against another lineage, an older serial, or other manifests."""


class PlanError(ReconcilerError):
    """A plan cannot be made or is refused by a guardrail."""


class ServiceError(ReconcilerError):
    """A call to the batch service failed. `call` names the operation, `resource` the manifest."""

    def __init__(
        self,
        message: str,
        *,
        call: str | None = None,
        resource: str | None = None,
        status_code: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.call = call
        self.resource = resource
        self.status_code = status_code

    def __str__(self) -> str:
        where = ", ".join(
            p for p in (self.resource and f"resource {self.resource}", self.call) if p
        )
        return f"{self.message} ({where})" if where else self.message


class TransientServiceError(ServiceError):
    """429, 5xx, timeouts and connection resets: the same call may succeed later.

    `ambiguous` is True when the request may have taken effect although no answer arrived (a
    create that timed out after sending): resending could duplicate a paid job, so the caller
    must first look for the job by its identity tag.
    """

    def __init__(
        self,
        message: str,
        *,
        call: str | None = None,
        resource: str | None = None,
        status_code: int | None = None,
        hint: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message, call=call, resource=resource, status_code=status_code, hint=hint)
        self.ambiguous = ambiguous


class PermanentServiceError(ServiceError):
    """A 4xx (other than 429) or a malformed answer: retrying the same call will not help."""


class ApplyError(ReconcilerError):
    """Apply finished with failures; `failures` maps resource name to its error."""

    def __init__(self, failures: dict[str, ReconcilerError]) -> None:
        self.failures = dict(sorted(failures.items()))
        names = ", ".join(self.failures)
        super().__init__(f"{len(self.failures)} resource(s) failed: {names}")
