"""PostgreSQL state URLs: which server and workspace they name, and how to print them safely.

The URL is `postgresql://user:password@host:port/db?workspace=name`. Everything here keeps the
password out of what may be shown: `redact_url` for the URL itself, `PostgresTarget.secrets` for
scrubbing driver messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from reconciler.errors import ConfigError

DEFAULT_WORKSPACE = "default"
_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """A parsed state URL: what to connect to, which row, and how to name it safely."""

    conninfo: str
    """The URL without `workspace` (psycopg rejects unknown parameters); holds the password."""
    workspace: str
    redacted: str
    """The URL with its password replaced by `***`: the only form that may be printed."""
    secrets: tuple[str, ...]
    """Password strings to scrub from any driver message before it is shown."""


def redact_url(url: str) -> str:
    """`url` with any password (userinfo or `password=` query) replaced by `***`."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, hostinfo = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{hostinfo}"
        query = urlencode(
            [
                (k, "***" if k in _SECRET_QUERY_KEYS else v)
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="*",
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "postgresql://***"  # unparseable: show nothing that might be a secret


def parse_url(url: str, default_workspace: str | None = DEFAULT_WORKSPACE) -> PostgresTarget:
    """Split a state URL into conninfo and workspace (`default_workspace` when it names none).

    Raises:
        ConfigError: malformed URL, invalid workspace name, or no workspace at all (the message
            is redacted).
    """
    redacted = redact_url(url)
    try:
        parts = urlsplit(url)
        password = unquote(parts.password) if parts.password else None
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise ConfigError(f"invalid PostgreSQL state URL {redacted}: {exc}") from None
    workspaces = [v for k, v in query if k == "workspace"]
    workspace = workspaces[-1] if workspaces else default_workspace
    if workspace is None:
        raise ConfigError(
            f"the PostgreSQL state {redacted} names no workspace and reconciler.yaml no `project:`",
            hint="set `project: <id>` in reconciler.yaml (it becomes the workspace), or add "
            "`?workspace=<name>` to the URL; a state written before this was required is in "
            "`?workspace=default`",
        )
    if not _WORKSPACE.fullmatch(workspace):
        raise ConfigError(
            f"invalid workspace {workspace!r} in state URL {redacted}: use letters, digits, "
            "_ . - (at most 63)"
        )
    rest = [(k, v) for k, v in query if k != "workspace"]
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    secrets = [p for p in (password, *(v for k, v in rest if k in _SECRET_QUERY_KEYS)) if p]
    # The URL may carry the password percent-encoded; scrub both spellings.
    secrets += [s for s in (_raw_password(parts.netloc),) if s]
    return PostgresTarget(
        conninfo, workspace, redacted, tuple(sorted(set(secrets), key=len, reverse=True))
    )


def _raw_password(netloc: str) -> str | None:
    userinfo = netloc.rsplit("@", 1)[0] if "@" in netloc else ""
    return userinfo.split(":", 1)[1] if ":" in userinfo else None
