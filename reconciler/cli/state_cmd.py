"""`reconciler state list|show|rm|mv|pull|push|gc` and `reconciler force-unlock`.

stdout carries only the artefact (names, a record, the document); messages go to stderr.
Commands that write take the state lock (`--lock-timeout` to wait for it) and write with the
serial they read, so a concurrent writer is refused rather than overwritten.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from reconciler.cli.context import CliContext
from reconciler.cli.session import (
    lock_timeout_option,
    locked_backend,
    opened_backend,
)
from reconciler.errors import ConfigError, StateError
from reconciler.manifests.model import RESOURCE_NAME_PATTERN
from reconciler.state import portable
from reconciler.state.document import State


def _say(message: str) -> None:
    click.echo(message, err=True)


def _require(state: State, name: str) -> None:
    if name not in state.resources:
        raise StateError(f"no resource named {name!r} in the state")


@click.group("state")
def state() -> None:
    """Inspect and edit the state (advanced: prefer `apply`)."""


@state.command("list")
@click.pass_obj
def list_(obj: CliContext) -> None:
    """Print the name of every resource in the state, one per line."""
    with opened_backend(obj.project()) as backend:
        current = backend.read()
    for name in sorted(current.resources):
        click.echo(name)


@state.command("show")
@click.argument("name")
@click.pass_obj
def show(obj: CliContext, name: str) -> None:
    """Print one resource's record as JSON."""
    with opened_backend(obj.project()) as backend:
        current = backend.read()
    _require(current, name)
    record = current.resources[name].model_dump(mode="json")
    click.echo(json.dumps(record, sort_keys=True, indent=2, ensure_ascii=False))


@state.command("rm")
@click.argument("names", nargs=-1, required=True)
@lock_timeout_option
@click.pass_obj
def rm(obj: CliContext, names: tuple[str, ...], lock_timeout: str) -> None:
    """Forget resources: the state stops tracking them; their jobs and results are untouched."""
    with locked_backend(obj.project(), lock_timeout) as backend:
        current = backend.read()
        for name in names:
            _require(current, name)
        updated = current
        for name in names:
            updated = updated.without_resource(name)
        stored = backend.write(updated, current.serial)
    _say(f"Removed {len(names)} resource(s) from the state (serial {stored.serial}).")


@state.command("mv")
@click.argument("old")
@click.argument("new")
@lock_timeout_option
@click.pass_obj
def mv(obj: CliContext, old: str, new: str, lock_timeout: str) -> None:
    """Rename a resource in the state (after renaming its manifest's metadata.name)."""
    if not re.fullmatch(RESOURCE_NAME_PATTERN, new):
        raise ConfigError(
            f"invalid resource name {new!r}: lower-case letters, digits and -, at most 63"
        )
    with locked_backend(obj.project(), lock_timeout) as backend:
        current = backend.read()
        _require(current, old)
        if new in current.resources:
            raise StateError(f"a resource named {new!r} is already in the state")
        stored = backend.write(current.with_resource_renamed(old, new), current.serial)
    _say(f"Moved {old} to {new} (serial {stored.serial}).")


@state.command("gc")
@lock_timeout_option
@click.pass_obj
def gc(obj: CliContext, lock_timeout: str) -> None:
    """Delete the stored blobs (applied specs, key digests, request keys) no record refers to.

    Commands that write the state (apply, destroy, import, state rm|mv|push) do this when they
    finish; run it after restoring an older state by hand, or to see what is left."""
    with locked_backend(obj.project(), lock_timeout) as backend:
        collected = backend.collect_garbage()
    if collected.skipped is not None:
        _say(f"Nothing collected: {collected.skipped}.")
        return
    _say(
        f"Removed {collected.removed} blob(s) no record refers to "
        f"({collected.removed_bytes / 1024:.1f} KiB); kept {collected.kept}."
    )


@state.command("pull")
@click.pass_obj
def pull(obj: CliContext) -> None:
    """Print the whole state document (JSON), each record's details spelled out and the blobs
    it refers to (key digests, request keys) carried in it, so the output can be pushed to any
    backend."""
    with opened_backend(obj.project()) as backend:
        pulled = portable.pull(backend.read(), backend)
    sys.stdout.buffer.write(pulled.document)
    sys.stdout.flush()
    if pulled.missing:
        _say(
            f"warning: {len(pulled.missing)} blob(s) the state refers to are missing from its "
            f"store, so the output does not carry them: {portable.describe(pulled.missing)}"
        )


@state.command("push")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite even a state with a newer serial.")
@lock_timeout_option
@click.pass_obj
def push(obj: CliContext, file: Path, force: bool, lock_timeout: str) -> None:
    """Replace the stored state with FILE (`-` for stdin).

    FILE must have the stored state's lineage. A FILE whose serial is older than the stored
    one is refused unless --force: someone wrote since it was pulled, and pushing it would
    undo their writes. (Pull, edit, push keeps the serial, so it is accepted.)
    """
    source = "stdin" if str(file) == "-" else str(file)
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise StateError(f"cannot read {source}: {exc.strerror}") from None
    with locked_backend(obj.project(), lock_timeout) as backend:
        # A document that refers to details blobs (a committed state file) finds them in the
        # backend's blob store; `state pull` output spells them out.
        read = portable.read_pushed(data, source=source, blobs=backend)
        pushed = read.state
        current = backend.read()
        exists = current.serial > 0
        if exists and pushed.lineage != current.lineage:
            raise StateError(
                f"{source} has lineage {pushed.lineage}, but the stored state has lineage "
                f"{current.lineage}: it belongs to another state",
                hint="pull the stored state and edit that instead",
            )
        if exists and not force and pushed.serial < current.serial:
            raise StateError(
                f"{source} has serial {pushed.serial}, older than the stored state's "
                f"{current.serial}: pushing it would undo later writes",
                hint="pull the current state and re-apply your edit, or pass --force",
            )
        # The blobs first: no stored state refers to a blob that is not there yet.
        backend.put_blobs(read.blobs)
        stored = backend.write(pushed, current.serial)
    _say(f"Pushed {source} (serial {stored.serial}).")


@click.command("force-unlock")
@click.argument("lock_id")
@click.option(
    "--force",
    is_flag=True,
    help="Break the lock even though its holder is still running on this host.",
)
@click.pass_obj
def force_unlock(obj: CliContext, lock_id: str, force: bool) -> None:
    """Break the state lock held under LOCK_ID (when its holder is stuck or gone).

    The id is the one an error names: `state ... is locked by ... lock id <LOCK_ID>`. A holder
    still running on this host is named and left alone unless --force is given.
    """
    with opened_backend(obj.project()) as backend:
        holder = backend.force_unlock(lock_id, force=force)
    _say(f"Released the lock {lock_id} held by {holder.describe()}.")
