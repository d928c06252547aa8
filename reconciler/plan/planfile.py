"""Saved plans: Plan <-> bytes (versioned JSON with a checksum, optionally signed) and the
checks apply runs before trusting one.

The file is JSON so a reviewer can read what CI saved, and carries a sha256 of its plan so a
truncated or hand-edited file is refused instead of applied. The sha256 is unkeyed, so it is no
defence against forgery: anyone can re-seal an edited file. Two defences are:

- an HMAC-SHA256 over the body with a key only CI holds (`RECONCILER_PLAN_KEY`, read by the
  CLI), so an artifact cannot be altered between the plan job and the apply job;
- `verified_plan`: apply re-derives the plan from the current manifests, state and live jobs
  (the planner is pure) and refuses any saved action the derivation would not produce. This
  holds with or without a key: a plan file can only ever narrow what apply would do anyway.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from reconciler.errors import PlanError, StalePlanError
from reconciler.jsonsafe import JsonLimitError, loads_bounded
from reconciler.plan.actions import PLAN_FORMAT_VERSION, Action, ActionKind, Plan, summarise
from reconciler.plan.cleanup import PendingDelete
from reconciler.state.document import State

PLAN_FILE_KIND = "reconciler-plan"
MAX_FILE_BYTES = 1 << 30
"""The largest saved plan read: at ~1 KB an action, room for a million; a file handed over from
elsewhere (a CI artifact) is not read into memory whatever its size."""
PLAN_KEY_VARIABLE = "RECONCILER_PLAN_KEY"
"""The environment variable holding the signing key: set it (from a CI secret) in both the plan
and the apply job, and apply refuses any saved plan that key did not sign."""
_ADAPTER: TypeAdapter[Plan] = TypeAdapter(Plan)
# A plan saved by the previous release (CI planned, then the tool was upgraded before apply) is
# still applied: version 1 differs only in how it names an action's shards.
_READABLE_VERSIONS = (1, 2, PLAN_FORMAT_VERSION)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signing_key(environ: Mapping[str, str]) -> bytes | None:
    """The plan-signing key from `environ` (the caller passes os.environ), or None when unset."""
    value = environ.get(PLAN_KEY_VARIABLE, "").strip()
    return value.encode() if value else None


def _signature(key: bytes, version: Any, body: Any) -> str:
    """HMAC-SHA256 over the kind, the format version and the canonical body."""
    signed = _canonical({"kind": PLAN_FILE_KIND, "format_version": version, "plan": body})
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def dumps(plan: Plan, *, signing_key: bytes | None = None) -> bytes:
    """The plan file's bytes: `{"kind", "format_version", "sha256", "plan"}` as JSON, plus
    `hmac_sha256` when a `signing_key` is given."""
    body = _ADAPTER.dump_python(plan, mode="json")
    document = {
        "kind": PLAN_FILE_KIND,
        "format_version": PLAN_FORMAT_VERSION,
        "sha256": hashlib.sha256(_canonical(body)).hexdigest(),
        "plan": body,
    }
    if signing_key:
        document["hmac_sha256"] = _signature(signing_key, PLAN_FORMAT_VERSION, body)
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False).encode() + b"\n"


def _check_signature(document: dict[str, Any], signing_key: bytes) -> None:
    signature = document.get("hmac_sha256")
    if not isinstance(signature, str):
        raise PlanError(
            "saved plan is not signed, and a plan key is set: it was not made by your plan job",
            hint="make the plan with the same RECONCILER_PLAN_KEY, or apply without a saved plan",
        )
    expected = _signature(signing_key, document.get("format_version"), document.get("plan"))
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise PlanError(
            "saved plan's signature does not match: the file was altered or signed with "
            "another key",
            hint="make the plan again in CI; never apply a plan file from an untrusted source",
        )


def loads(data: bytes, *, signing_key: bytes | None = None) -> Plan:
    """The Plan saved in `data`; with `signing_key`, only a file it signed.

    Raises:
        PlanError: not a plan file, another format version, checksum mismatch, invalid content,
            or (with a key) no signature or a signature that does not match.
    """
    try:
        document = loads_bounded(data)
    except (UnicodeDecodeError, json.JSONDecodeError, JsonLimitError) as exc:
        raise PlanError(f"not a saved plan file: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != PLAN_FILE_KIND:
        raise PlanError("not a saved plan file (no `kind: reconciler-plan`)")
    if signing_key:
        _check_signature(document, signing_key)
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
    if version in (1, 2) and isinstance(body, dict):
        # Before version 3 a plan listed no deletions: it approved none. Its version stays on
        # it: `verified_plan` holds an older plan only to what that version said.
        body = {**body, "format_version": version, "cleanup": []}
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
    return {**body, "actions": actions}


def check_plan_current(
    plan: Plan, state: State, manifests_sha256: str, settings_sha256: str
) -> None:
    """Refuse a saved plan made against another state, other manifests or other settings, as
    Terraform does.

    Raises:
        StalePlanError: a different lineage ("does not match the state"), or a different serial,
            manifests hash or settings hash ("stale").
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
    if plan.settings_sha256 != settings_sha256:
        raise StalePlanError(
            "saved plan is stale: the settings of reconciler.yaml (or their RECONCILER_* and flag "
            "overrides) changed since it was made",
            hint="make a new plan under the settings apply runs with",
        )


_DESCRIBED_AT_THE_TIME: Final = frozenset(
    {
        "detail",
        "estimated_input_tokens",
        "input_tokens_counted",
        "estimated_cost_usd",
        "max_output_cost_usd",
    }
)
"""The fields of an action an honest saved plan may give otherwise than its derivation at apply:
the sentence about the live jobs at that moment, and the estimates, which depend on whether the
local tokenizer's model file was cached where each ran and on the price table of the release
that ran (a plan saved by the previous release is still applied). Apply reads none of them."""


def _what_it_does(action: Action) -> tuple[Any, ...]:
    """The fields of an action the executor acts on: a saved action must equal its derivation
    in all of them. Counts, costs, reasons and details only describe, so they may differ; an
    UPDATE's diff is what it sets in place (the priority), so a reviewer's values must be the
    ones applied."""
    return (
        action.diff if action.kind is ActionKind.UPDATE else (),
        action.kind,
        action.resource,
        action.job_names,
        action.attempt,
        action.next_attempt,
        action.shards_to_create,
        action.shards_given_up,
        action.purpose,
        action.cancel_first,
    )


def verified_plan(saved: Plan, derived: Plan) -> Plan:
    """The plan apply runs for a saved plan: the derived actions the saved plan approved.

    `derived` is the plan of the current manifests, state and live jobs with the saved plan's
    targets, replacements and refresh-only. Every saved action other than NOOP must equal its
    derivation (`_what_it_does`), and in a plan of this format version in every other field too
    but the ones described at the time (`_DESCRIBED_AT_THE_TIME`); apply then runs the derived
    actions, so nothing the file says beyond "which of these" reaches the executor. A saved
    NOOP approves nothing (the job may have moved on since). Deletions: exactly the derived
    ones (`_verified_cleanup`).

    Raises:
        StalePlanError: a saved action the derivation does not produce (the service or state
            moved on since, or the file was forged), naming the resource and both actions, or
            the field that differs; a deletion the derivation does not make, or leaves out.
    """
    derived_by_resource = {action.resource: action for action in derived.actions}
    exact = saved.format_version >= PLAN_FORMAT_VERSION
    approved: list[Action] = []
    seen: set[str] = set()
    for action in saved.actions:
        if action.resource in seen:
            raise StalePlanError(f"saved plan names resource {action.resource!r} twice")
        seen.add(action.resource)
        if action.kind is ActionKind.NOOP:
            continue
        now = derived_by_resource.get(action.resource)
        if (
            now is None
            or now.kind is not action.kind
            or (not exact and _what_it_does(now) != _what_it_does(action))
        ):
            planned_now = "nothing" if now is None else _describe(now)
            raise StalePlanError(
                f"saved plan is stale: it would {_describe(action)} of {action.resource!r}, "
                f"but the current manifests, state and service call for {planned_now}",
                hint=_STALE_HINT,
            )
        if exact:
            _refuse_other_fields(action, now)
        approved.append(now)
    actions = tuple(sorted(approved, key=lambda a: a.resource))
    return dataclasses.replace(
        derived,
        actions=actions,
        cleanup=_verified_cleanup(saved, derived, exact=exact),
        summary=summarise(actions, price_table_as_of=derived.summary.price_table_as_of),
    )


_STALE_HINT: Final = (
    "make a new plan: the service or the state moved on since this one, or the file was altered"
)


def _refuse_other_fields(saved: Action, derived: Action) -> None:
    """A saved action is its derivation in every field but the ones described at the time:
    what a reviewer read (requests, model, diff, reason...) is what the file says apply does.

    Raises:
        StalePlanError: naming the first field that differs, with both values.
    """
    for field in dataclasses.fields(saved):
        name = field.name
        if name in _DESCRIBED_AT_THE_TIME:
            continue
        was, now = getattr(saved, name), getattr(derived, name)
        if was != now:
            raise StalePlanError(
                f"saved plan is stale: its {_describe(saved)} of {saved.resource!r} says "
                f"`{name}` is {_shown(was)}, but the current manifests, state and service give "
                f"{_shown(now)}",
                hint=_STALE_HINT,
            )


def _verified_cleanup(saved: Plan, derived: Plan, *, exact: bool) -> tuple[PendingDelete, ...]:
    """The deletions apply runs for a saved plan: exactly the derived ones. The state (whose
    serial the plan matched) alone decides them, so an honest plan lists the same; a plan of
    a version before deletions were listed approved none.

    Raises:
        StalePlanError: a deletion the derivation does not make, one listed twice, or (in a
            plan of this version) a derived one the file leaves out, naming the file.
    """
    if not exact:
        return ()
    derived_set = set(derived.cleanup)
    seen: set[PendingDelete] = set()
    for item in saved.cleanup:
        if item in seen:
            raise StalePlanError(f"saved plan lists the deletion of {_deletion(item)} twice")
        seen.add(item)
        if item not in derived_set:
            raise StalePlanError(
                f"saved plan is stale: it would delete {_deletion(item)}, which the current "
                "state does not leave to delete",
                hint=_STALE_HINT,
            )
    for item in derived.cleanup:
        if item not in seen:
            raise StalePlanError(
                f"saved plan is stale: it leaves out the deletion of {_deletion(item)}, which "
                "the current state leaves to delete",
                hint=_STALE_HINT,
            )
    return derived.cleanup


def _deletion(item: PendingDelete) -> str:
    return f"{item.role.value} file {item.file_name} of {item.resource!r} attempt {item.attempt}"


def _shown(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(action: Action) -> str:
    jobs = f" (jobs {', '.join(action.job_names)})" if action.job_names else ""
    attempt = f" attempt {action.next_attempt}" if action.next_attempt is not None else ""
    return f"{action.kind.value}{attempt}{jobs}"
