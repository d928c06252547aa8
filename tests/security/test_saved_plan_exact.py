"""A saved plan is exactly what apply derives again: any field of an action a reviewer reads,
and any deletion, altered in the file (and re-sealed with the unkeyed sha256) is refused with a
message naming it. Only what describes the moment (the live jobs' sentence, the estimates) may
differ, and apply never reads those."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.errors import StalePlanError
from reconciler.plan import planfile
from reconciler.plan.actions import (
    Action,
    ActionKind,
    DiffChange,
    DiffEntry,
    Plan,
    Reason,
    RequestChanges,
)
from reconciler.plan.cleanup import FileRole, PendingDelete
from reconciler.state.document import AttemptPurpose
from tests.unit.render.samples import zoo_plan

from .conftest import run_cli, write_project

pytestmark = pytest.mark.plan_tampering

DESCRIBED_AT_THE_TIME = {
    "detail",
    "estimated_input_tokens",
    "input_tokens_counted",
    "estimated_cost_usd",
    "max_output_cost_usd",
}
FIELDS = [f.name for f in dataclasses.fields(Action) if f.name not in DESCRIBED_AT_THE_TIME]
"""Every other field, so a field added to Action later is covered without touching this file."""
DELETION = PendingDelete("eval", 1, "files/eval-input", FileRole.INPUT)


def _saved(plan: Plan) -> Plan:
    """`plan` as apply reads it back from its file."""
    return planfile.loads(planfile.dumps(plan))


def _tampered(field: str, value: Any) -> Any:
    """Another value for an action's `field`, of the type the field holds."""
    match value:
        case bool():
            return not value
        case int() | float():
            return value + 7
        case ActionKind():
            return ActionKind.REFRESH if value is not ActionKind.REFRESH else ActionKind.COLLECT
        case Reason():
            return next(r for r in Reason if r is not value)
        case AttemptPurpose():
            return next(p for p in AttemptPurpose if p is not value)
        case str():
            return value + "-forged"
        case tuple() if value:
            return value[:-1]
    return {
        "diff": (DiffEntry("spec.priority", DiffChange.CHANGED, 1, 9_000),),
        "request_changes": RequestChanges(added=1, removed=0, changed=0, unchanged=0),
        "job_names": ("batches/someone-elses",),
        "attempt": 99,
        "next_attempt": 99,
        "shards_to_create": (0, 5),
        "shards_given_up": (5,),
        "purpose": AttemptPurpose.INCREMENTAL,
        "model": "models/forged",
        "max_output_tokens": 1,
    }[field]


def test_an_untouched_saved_plan_is_its_derivation() -> None:
    derived = zoo_plan()
    approved = planfile.verified_plan(_saved(derived), derived)
    assert approved.actions == tuple(a for a in derived.actions if a.kind is not ActionKind.NOOP)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("kind", [ActionKind.CREATE, ActionKind.COLLECT, ActionKind.UPDATE])
def test_a_saved_action_with_any_field_altered_is_refused_naming_it(
    field: str, kind: ActionKind
) -> None:
    derived = zoo_plan()
    target = next(a for a in derived.actions if a.kind is kind)
    forged = dataclasses.replace(
        derived,
        actions=tuple(
            dataclasses.replace(a, **{field: _tampered(field, getattr(a, field))})
            if a is target
            else a
            for a in derived.actions
        ),
    )

    with pytest.raises(StalePlanError) as refused:
        planfile.verified_plan(_saved(forged), derived)

    message = str(refused.value)
    assert message.startswith("saved plan is stale: ")
    if field == "kind":  # another kind: both are named
        assert f"it would {_tampered(field, kind).value}" in message
    elif field == "resource":  # a resource nothing is derived for
        assert f"of '{target.resource}-forged', but" in message
    else:
        assert f"of {target.resource!r} says `{field}` is " in message


@pytest.mark.parametrize("field", sorted(DESCRIBED_AT_THE_TIME))
def test_what_describes_the_moment_may_differ(field: str) -> None:
    derived = zoo_plan()
    target = next(a for a in derived.actions if a.kind is ActionKind.CREATE)
    value = getattr(target, field)
    other: Any = 1.5 if value is None else _tampered(field, value)
    forged = dataclasses.replace(
        derived,
        actions=tuple(
            dataclasses.replace(a, **{field: other}) if a is target else a for a in derived.actions
        ),
    )
    approved = planfile.verified_plan(_saved(forged), derived)
    assert target in approved.actions  # the derived action runs, not the file's


def _with_cleanup(plan: Plan, *items: PendingDelete) -> Plan:
    return dataclasses.replace(plan, cleanup=items)


def test_a_deletion_the_derivation_does_not_make_is_refused_naming_the_file() -> None:
    derived = zoo_plan()
    victim = PendingDelete("eval", 1, "files/someone-elses", FileRole.RESULTS)
    with pytest.raises(StalePlanError, match="would delete results file files/someone-elses"):
        planfile.verified_plan(_saved(_with_cleanup(derived, victim)), derived)


def test_a_deletion_the_file_leaves_out_is_refused() -> None:
    derived = _with_cleanup(zoo_plan(), DELETION)
    with pytest.raises(StalePlanError, match="leaves out the deletion of input file"):
        planfile.verified_plan(_saved(_with_cleanup(derived)), derived)


def test_a_deletion_listed_twice_is_refused() -> None:
    derived = _with_cleanup(zoo_plan(), DELETION)
    with pytest.raises(StalePlanError, match="twice"):
        planfile.verified_plan(_saved(_with_cleanup(derived, DELETION, DELETION)), derived)


def test_the_derived_deletions_a_saved_plan_lists_are_approved() -> None:
    derived = _with_cleanup(zoo_plan(), DELETION)
    assert planfile.verified_plan(_saved(derived), derived).cleanup == (DELETION,)


def _reseal(document: dict[str, Any]) -> bytes:
    body = document["plan"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    document["sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
    return json.dumps(document).encode()


def test_a_plan_of_version_2_approves_no_deletion_and_is_held_to_what_it_does() -> None:
    """Version 2 listed no deletions and fewer fields: applied after an upgrade, it deletes
    nothing, and only what the executor acts on must match."""
    derived = _with_cleanup(zoo_plan(), DELETION)
    document = json.loads(planfile.dumps(derived))
    document["format_version"] = document["plan"]["format_version"] = 2
    del document["plan"]["cleanup"]
    for action in document["plan"]["actions"]:
        action["max_output_tokens"] = None  # a field a later version added
    saved = planfile.loads(_reseal(document))

    approved = planfile.verified_plan(saved, derived)

    assert approved.cleanup == ()
    assert len(approved.actions) == len(
        [a for a in derived.actions if a.kind is not ActionKind.NOOP]
    )


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator", job_seconds=600) as handle:
        yield handle


def test_apply_refuses_a_saved_plan_with_a_forged_deletion_and_deletes_nothing(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "repo", "state: state/reconciler.state.json\n")
    env = {"RECONCILER_ENDPOINT": emulator.base_url}
    plan_file = tmp_path / "plan.bin"
    assert run_cli(root, "plan", "--out", str(plan_file), env=env).returncode == 0
    document = json.loads(plan_file.read_bytes())
    document["plan"]["cleanup"] = [
        {"resource": "poems", "attempt": 1, "file_name": "files/victim", "role": "input"}
    ]
    plan_file.write_bytes(_reseal(document))

    refused = run_cli(root, "apply", str(plan_file), "--no-wait", env=env)

    assert refused.returncode == 1, refused.stderr
    assert "would delete input file files/victim of 'poems' attempt 1" in refused.stderr
    assert "Traceback" not in refused.stderr
    calls = emulator.calls()
    assert calls.get("files.delete", 0) == 0 and calls.get("batches.create_generate", 0) == 0


def test_apply_refuses_a_saved_plan_whose_request_count_was_lowered(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The reviewer was shown the altered file's figures (2 → 1 request): apply refuses rather
    than run the derived create the reviewer never saw."""
    root = write_project(tmp_path / "repo", "state: state/reconciler.state.json\n")
    env = {"RECONCILER_ENDPOINT": emulator.base_url}
    plan_file = tmp_path / "plan.bin"
    assert run_cli(root, "plan", "--out", str(plan_file), env=env).returncode == 0
    document = json.loads(plan_file.read_bytes())
    (create,) = [a for a in document["plan"]["actions"] if a["kind"] == "create"]
    assert create["requests"] == 2
    create["requests"] = 1
    plan_file.write_bytes(_reseal(document))

    refused = run_cli(root, "apply", str(plan_file), "--no-wait", env=env)

    assert refused.returncode == 1, refused.stderr
    assert "says `requests` is 1, but the current manifests, state and service give 2" in (
        refused.stderr
    )
    assert emulator.calls().get("batches.create_generate", 0) == 0
