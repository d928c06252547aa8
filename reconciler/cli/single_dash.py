"""Terraform habits: a single-dash long flag (`-auto-approve`, `-json`, `-target=x`) is refused
with the spelling this CLI takes, instead of click's "no such option: -a".

Checked on the arguments before click parses them, so the answer names the whole flag the user
typed. Only the global short options (`-C DIR`, `-v`, `-h`) are single-dash here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import click

_RENAMED = {
    "json": "--format json",
    "chdir": "-C",
    "no-color": "--no-color",
}
"""Terraform flags spelled differently here; any other `-name` becomes `--name`."""

_LONG_FLAG = re.compile(r"-(?P<name>[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?:=(?P<value>.*))?", re.DOTALL)


def suggestion(token: str) -> str | None:
    """The spelling to suggest for `token`, or None when it is not a single-dash long flag."""
    if token.startswith(("--", "-C", "-h")) or re.fullmatch(r"-v+", token):
        return None  # a long option, `-C DIR` / `-Cdir`, help, or -v, -vv
    match = _LONG_FLAG.fullmatch(token)
    if match is None or len(match.group("name")) < 2:
        return None
    name, value = match.group("name"), match.group("value")
    flag = _RENAMED.get(name, f"--{name}")
    return flag if value is None else f"{flag} {value}"


def refuse_single_dash_flags(args: Sequence[str]) -> None:
    """Raise a usage error for the first single-dash long flag before a `--`.

    Raises:
        click.UsageError: `-auto-approve` and the like, naming the right spelling.
    """
    for token in args:
        if token == "--":
            return
        right = suggestion(token)
        if right is not None:
            raise click.UsageError(f"unknown option `{token}`: did you mean `{right}`?")
