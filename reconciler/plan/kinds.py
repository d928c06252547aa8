"""The two closed vocabularies of a plan: what an action does (ActionKind) and why (Reason).

Kept apart as Terraform keeps `Action` and `ResourceInstanceChangeActionReason`: renderers, the
executor and status `match` on them with `assert_never`, never on strings. The values that carry
them (Action, Plan) live in plan.actions.
"""

from __future__ import annotations

import enum
from typing import assert_never


class ActionKind(enum.StrEnum):
    """What applying an action does to one resource (the closed vocabulary of DESIGN §5)."""

    CREATE = "create"
    """Upload the input if needed, record the intent, create the job."""
    ADOPT = "adopt"
    """Record in the state a live job that carries this resource's identity tag (crash recovery)."""
    REFRESH = "refresh"
    """The job is pending/running: record its progress, nothing else."""
    COLLECT = "collect"
    """The job ended: download + checksum its results (if it succeeded) and record its end state."""
    REPLACE = "replace"
    """A replacing field changed: cancel the old job if it still runs, then create a new one."""
    UPDATE = "update"
    """Only in-place fields changed: move/copy the results and edit the state; no job."""
    RESUBMIT = "resubmit"
    """The job ended badly (or some requests failed) and policy allows another attempt."""
    RECREATE = "recreate"
    """Drift: the state records a job the service no longer has, and its results were never saved."""
    CANCEL = "cancel"
    """The manifest is gone and its job still runs: cancel it, then forget the resource."""
    FORGET = "forget"
    """The manifest is gone and nothing runs: drop the record (results stay where they are)."""
    NOOP = "noop"
    """Nothing to do; the reason says whether that is "up to date" or something to report."""

    @property
    def symbol(self) -> str:
        """The marker renderers print before the resource, in Terraform's spirit."""
        match self:
            case ActionKind.CREATE:
                return "+"
            case ActionKind.ADOPT:
                return "=>"
            case ActionKind.REFRESH:
                return "<-"
            case ActionKind.COLLECT:
                return "<="
            case ActionKind.REPLACE:
                return "-/+"
            case ActionKind.UPDATE:
                return "~"
            case ActionKind.RESUBMIT:
                return "+>"
            case ActionKind.RECREATE:
                return "+!"
            case ActionKind.CANCEL:
                return "-"
            case ActionKind.FORGET:
                return "x"
            case ActionKind.NOOP:
                return " "
            case _:
                assert_never(self)

    @property
    def changes_world(self) -> bool:
        """True when applying it calls the service to create/cancel a job or writes results.

        ADOPT, REFRESH and FORGET only edit the state; NOOP does nothing.
        """
        match self:
            case (
                ActionKind.CREATE
                | ActionKind.REPLACE
                | ActionKind.RESUBMIT
                | ActionKind.RECREATE
                | ActionKind.CANCEL
                | ActionKind.COLLECT
                | ActionKind.UPDATE
            ):
                return True
            case ActionKind.ADOPT | ActionKind.REFRESH | ActionKind.FORGET | ActionKind.NOOP:
                return False
            case _:
                assert_never(self)

    @property
    def creates_job(self) -> bool:
        """True when applying it creates at least one new (paid) batch job."""
        return self in (
            ActionKind.CREATE,
            ActionKind.REPLACE,
            ActionKind.RESUBMIT,
            ActionKind.RECREATE,
        )

    @property
    def is_replace(self) -> bool:
        """True for the delete-then-create kind, as Terraform's `Action.IsReplace`."""
        return self is ActionKind.REPLACE

    @property
    def is_change(self) -> bool:
        """What `--detailed-exitcode` counts: anything but NOOP and REFRESH.

        REFRESH is left out on purpose: a PR opened while a job runs must not look like a change.
        """
        return self not in (ActionKind.NOOP, ActionKind.REFRESH)


class Reason(enum.StrEnum):
    """Why an action was planned; renderers turn it into the "# ... because ..." line."""

    NEW_RESOURCE = "new_resource"
    PREVIOUS_CREATE_LOST = "previous_create_lost"
    """The state holds an intent whose job never appeared at the service: create it again."""
    NO_JOB_RECORDED = "no_job_recorded"
    TAGGED_JOB_FOUND = "tagged_job_found"
    JOB_IN_PROGRESS = "job_in_progress"
    JOB_SUCCEEDED = "job_succeeded"
    JOB_FAILED = "job_failed"
    JOB_EXPIRED = "job_expired"
    JOB_CANCELLED = "job_cancelled"
    JOB_GONE = "job_gone"
    ENDPOINT_CHANGED = "endpoint_changed"
    """The job ran on another endpoint kind (`gemini` before `vertex`, say) and its results were
    not collected; the current endpoint cannot see it, so the work runs again there."""
    JOB_STUCK = "job_stuck"
    """A job waited past `policy.timeout`: cancel it and run a new attempt."""
    FAILED_REQUESTS = "failed_requests"
    MODEL_CHANGED = "model_changed"
    TASK_CHANGED = "task_changed"
    SOURCE_CHANGED = "source_changed"
    MEDIA_CHANGED = "media_changed"
    CONFIG_CHANGED = "config_changed"
    SPEC_CHANGED = "spec_changed"
    """The spec hash moved but the state holds no field record to say which field."""
    REPLACE_REQUESTED = "replace_requested"
    OUTPUT_MOVED = "output_moved"
    LABELS_CHANGED = "labels_changed"
    POLICY_CHANGED = "policy_changed"
    SHARDS_CHANGED = "shards_changed"
    PRIORITY_CHANGED = "priority_changed"
    """`spec.priority` changed: a pending or running job gets it through the service's update
    call (no new job); an ended one keeps its own and only the state changes."""
    NO_REQUESTS_TO_RUN = "no_requests_to_run"
    """The source changed but every remaining request already has a result (rerun: changed)."""
    NOT_DESIRED = "not_desired"
    DESTROYED = "destroyed"
    """`reconciler destroy`: cancel what runs and forget the resource, leaving a tombstone."""
    UP_TO_DATE = "up_to_date"
    RESULTS_COLLECTED = "results_collected"
    """The job is gone at the service, which is expected once its results were saved."""
    RESULTS_DRIFTED = "results_drifted"
    """The saved results are missing or changed on disk; the service still has them."""
    RESULTS_LOST = "results_lost"
    """The saved results are missing or changed on disk, and the service no longer has them."""
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    POLICY_SAYS_NO = "policy_says_no"

    @property
    def is_report(self) -> bool:
        """A NOOP with this reason is something a human should hear about."""
        return self in (Reason.ATTEMPTS_EXHAUSTED, Reason.POLICY_SAYS_NO, Reason.RESULTS_LOST)

    @property
    def text(self) -> str:  # noqa: C901 -- one case per reason, exhaustive (assert_never)
        """The clause after "because" in rendered plans."""
        match self:
            case Reason.NEW_RESOURCE:
                return "it is not in the state"
            case Reason.PREVIOUS_CREATE_LOST:
                return "the previous create did not reach the service"
            case Reason.NO_JOB_RECORDED:
                return "the state records no job for it"
            case Reason.TAGGED_JOB_FOUND:
                return "a live job carries its identity tag (a crash happened after create)"
            case Reason.JOB_IN_PROGRESS:
                return "its job is still in progress"
            case Reason.JOB_SUCCEEDED:
                return "its job succeeded"
            case Reason.JOB_FAILED:
                return "its job failed"
            case Reason.JOB_EXPIRED:
                return "its job expired"
            case Reason.JOB_CANCELLED:
                return "its job was cancelled"
            case Reason.JOB_STUCK:
                return "its job waited past policy.timeout"
            case Reason.JOB_GONE:
                return "its job is gone at the service and its results were not collected"
            case Reason.ENDPOINT_CHANGED:
                return (
                    "its job ran on another endpoint, which this project no longer uses, and "
                    "its results were not collected"
                )
            case Reason.FAILED_REQUESTS:
                return "some requests failed and policy retries them"
            case Reason.MODEL_CHANGED:
                return "the model changed"
            case Reason.TASK_CHANGED:
                return "the task changed"
            case Reason.SOURCE_CHANGED:
                return "the source changed"
            case Reason.MEDIA_CHANGED:
                return "referenced media changed"
            case Reason.CONFIG_CHANGED:
                return "the job config changed"
            case Reason.SPEC_CHANGED:
                return "its spec changed"
            case Reason.REPLACE_REQUESTED:
                return "a replace was requested"
            case Reason.OUTPUT_MOVED:
                return "the output location changed"
            case Reason.LABELS_CHANGED:
                return "its labels changed"
            case Reason.POLICY_CHANGED:
                return "its policy changed"
            case Reason.SHARDS_CHANGED:
                return "its shard limits changed"
            case Reason.PRIORITY_CHANGED:
                return "its priority changed"
            case Reason.NO_REQUESTS_TO_RUN:
                return "the source changed but no new or changed request needs a run"
            case Reason.NOT_DESIRED:
                return "its manifest was removed"
            case Reason.DESTROYED:
                return "it is being destroyed"
            case Reason.UP_TO_DATE:
                return "it is up to date"
            case Reason.RESULTS_COLLECTED:
                return "its results were collected"
            case Reason.RESULTS_DRIFTED:
                return "its saved results are missing or changed on disk"
            case Reason.RESULTS_LOST:
                return "its saved results are missing or changed on disk and the service no longer has them"
            case Reason.ATTEMPTS_EXHAUSTED:
                return "attempts are exhausted (policy.max_attempts)"
            case Reason.POLICY_SAYS_NO:
                return "policy.resubmit does not include its end state"
            case _:
                assert_never(self)
