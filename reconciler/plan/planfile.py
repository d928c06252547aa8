"""Saved plans: Plan <-> bytes (versioned JSON with a checksum) and the staleness check apply runs.

The file is JSON so a reviewer can read what CI saved, and carries a sha256 of its plan so a
truncated or hand-edited file is refused instead of applied.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from reconciler.errors import PlanError, StalePlanError
from reconciler.plan.actions import PLAN_FORMAT_VERSION, Plan
from reconciler.state.document import State

PLAN_FILE_KIND = "reconciler-plan"
_ADAPTER: TypeAdapter[Plan] = TypeAdapter(Plan)
# A plan saved by the previous release (CI planned, then the tool was upgraded before apply) is
# still applied: version 1 differs only in how it names an action's shards.
_READABLE_VERSIONS = (1, PLAN_FORMAT_VERSION)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(plan: Plan) -> bytes:
    """The plan file's bytes: `{"kind", "format_version", "sha256", "plan"}` as JSON."""
    body = _ADAPTER.dump_python(plan, mode="json")
    document = {
        "kind": PLAN_FILE_KIND,
        "format_version": PLAN_FORMAT_VERSION,
        "sha256": hashlib.sha256(_canonical(body)).hexdigest(),
        "plan": body,
    }
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False).encode() + b"\n"


def loads(data: bytes) -> Plan:
    """The Plan saved in `data`.

    Raises:
        PlanError: not a plan file, another format version, checksum mismatch, or invalid content.
    """
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"not a saved plan file: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != PLAN_FILE_KIND:
        raise PlanError("not a saved plan file (no `kind: reconciler-plan`)")
    version = document.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise PlanError(
            f"saved plan has format version {version}; this reconciler reads {PLAN_FORMAT_VERSION}",
            hint="make the plan again with this version of reconciler",
        )
    body = document.get("plan")
    if hashlib.sha256(_canonical(body)).hexdigest() != document.get("sha256"):
        raise PlanError("saved plan file is corrupt: its checksum does not match its content")
    if version == 1:
        body = _from_version_1(body)
    try:
        return _ADAPTER.validate_python(body)
    except ValidationError as exc:
        raise PlanError(f"saved plan file is invalid: {exc.errors()[0]['msg']}") from None


def _from_version_1(body: Any) -> Any:
    """A version-1 plan body in version 2's shape.

    Version 1 had one `shards` field per action that meant the shards to create alone for a
    job-creating action and the shards given up for a COLLECT; it is renamed by the action's
    kind. Dropping it instead would make apply recreate every shard, paying for jobs twice.
    """
    if not isinstance(body, dict) or not isinstance(body.get("actions"), list):
        return body
    actions = []
    for action in body["actions"]:
        if isinstance(action, dict) and "shards" in action:
            action = dict(action)
            shards = action.pop("shards")
            named = "shards_given_up" if action.get("kind") == "collect" else "shards_to_create"
            action[named] = shards
        actions.append(action)
    return {**body, "actions": actions, "format_version": PLAN_FORMAT_VERSION}


def check_plan_current(plan: Plan, state: State, manifests_sha256: str) -> None:
    """Refuse a saved plan made against another state or other manifests, as Terraform does.

    Raises:
        StalePlanError: a different lineage ("does not match the state"), or a different serial
            or manifests hash ("stale").
    """
    # A state that was never written gets a fresh lineage on every read, so a plan made before
    # the first apply cannot name it: as Terraform, accept it while the state is still empty.
    never_written = plan.state_serial == 0 and state.serial == 0 and not state.resources
    if plan.state_lineage != state.lineage and plan.state_serial == 0 and state.serial > 0:
        raise StalePlanError(
            f"saved plan is stale: it was made before the state was first written, and the "
            f"state is now at serial {state.serial}",
            hint="make a new plan: the state changed since this one was saved",
        )
    if plan.state_lineage != state.lineage and not never_written:
        raise StalePlanError(
            f"saved plan does not match the given state: it was made for state lineage "
            f"{plan.state_lineage}, the state's lineage is {state.lineage}",
            hint="make a new plan against this state",
        )
    if plan.state_serial != state.serial:
        raise StalePlanError(
            f"saved plan is stale: it was made against state serial {plan.state_serial}, "
            f"the state is now at serial {state.serial}",
            hint="make a new plan: the state changed since this one was saved",
        )
    if plan.manifests_sha256 != manifests_sha256:
        raise StalePlanError(
            "saved plan is stale: the manifests changed since it was made",
            hint="make a new plan from the current manifests",
        )
