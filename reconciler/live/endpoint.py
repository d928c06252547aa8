"""Where the batch service is and which key opens it: the one place endpoints are resolved.

`ProjectConfig.endpoint` names the service: `gemini` (Google's Developer API), `vertex` (Vertex
AI batch prediction, resolved further by live/vertex_target.py: it needs a project, a region and
credentials, not a key), `emulator` (the embedded emulator, started in-process), or an http(s)
URL (an emulator or proxy already running), so the adapter never parses endpoint strings itself.

Pure: reads only the environment mapping it is given; imports no SDK. The key is kept out of
`repr` so a logged endpoint never shows it (DESIGN §7: the key never appears in logs or errors).

Where the key may go (DESIGN §7). `reconciler.yaml` is part of every pull request, so an
endpoint it names is attacker-controlled in a plan workflow that runs with the secret. The real
key is therefore sent only to Google's API hosts over https, or to the one URL trusted from
outside the repository (`RECONCILER_TRUST_ENDPOINT`, an environment variable the workflow, not
the pull request, sets), and never over plain http except to a loopback address. Any other
endpoint with a key in the environment is refused before a single request is made.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import assert_never
from urllib.parse import SplitResult, urlsplit, urlunsplit

from reconciler.errors import ConfigError

API_KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
"""Checked in this order, as the SDK's `get_env_api_key` does: GOOGLE_API_KEY wins when both
are set; an empty value counts as unset."""

EMULATOR_API_KEY = "emulator"
"""The key sent to an emulator when the environment has none: the SDK needs a non-empty key to
send `x-goog-api-key`, and the emulator accepts any (gemini-batch-protocol.md §1)."""


TRUST_VARIABLE = "RECONCILER_TRUST_ENDPOINT"
"""The one custom endpoint URL that may receive the real key, compared exactly (a trailing `/`
aside). It is read from the environment only: a setting in `reconciler.yaml` could be changed
by the very pull request whose plan runs with the secret."""

GOOGLE_API_HOST = "generativelanguage.googleapis.com"
"""The Gemini Developer API; Vertex AI's regional hosts end in `VERTEX_HOST_SUFFIX`."""
VERTEX_HOST_SUFFIX = "-aiplatform.googleapis.com"


class EndpointKind(enum.StrEnum):
    GEMINI = "gemini"
    """Google's Gemini Developer API at the SDK's default base URL."""
    EMULATOR = "emulator"
    """The embedded emulator, started in-process on a free port for the adapter's lifetime."""
    URL = "url"
    """An http(s) base URL: a running emulator or a proxy speaking the same REST protocol."""
    VERTEX = "vertex"
    """Vertex AI batch prediction (`batchPredictionJobs`), with Application Default Credentials;
    no API key is ever sent."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A resolved endpoint: what kind, where (None = the SDK's default) and with which key."""

    kind: EndpointKind
    base_url: str | None
    api_key: str = field(repr=False)
    api_version: str

    def __str__(self) -> str:
        return shown_url(self.base_url) if self.base_url else self.kind.value


def api_key_from_env(environ: Mapping[str, str]) -> str | None:
    """The API key exactly as the SDK would pick it from the environment, or None."""
    for name in API_KEY_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def endpoint_kind(value: str) -> EndpointKind:
    """Classify an `endpoint` setting.

    Raises:
        ConfigError: not `gemini`, `vertex`, `emulator` or an http(s) URL with a host.
    """
    text = value.strip()
    if text.lower() == EndpointKind.GEMINI.value:
        return EndpointKind.GEMINI
    if text.lower() == EndpointKind.EMULATOR.value:
        return EndpointKind.EMULATOR
    if text.lower() == EndpointKind.VERTEX.value:
        return EndpointKind.VERTEX
    if is_http_url(text):
        return EndpointKind.URL
    raise ConfigError(
        f"setting `endpoint`: {value!r} is not `gemini`, `vertex`, `emulator` or an http(s) URL"
        " with a host (and a port from 0 to 65535, if any)",
        hint="e.g. endpoint: emulator, or endpoint: http://127.0.0.1:8765",
    )


def shown_url(url: str) -> str:
    """`url` as messages and logs show it: without the user information, query and fragment,
    any of which may carry a secret (`user:token@`, `?key=`)."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_http_url(text: str) -> bool:
    """An http(s) URL with a host and, if it names one, a port in range: the HTTP client would
    refuse any other only on its first request, as an internal error."""
    parts = urlsplit(text.strip())
    try:
        parts.port  # noqa: B018 - parsed on access: raises for a port out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def resolve_endpoint(
    value: str,
    *,
    api_version: str,
    environ: Mapping[str, str],
    emulator_base_url: str | None = None,
) -> Endpoint:
    """Resolve an `endpoint` setting to a base URL and key.

    For `emulator`, `emulator_base_url` is the address of the emulator the caller started.

    Raises:
        ConfigError: the setting is invalid, or `gemini` is chosen and no key is set.
    """
    kind = endpoint_kind(value)
    key = api_key_from_env(environ)
    match kind:
        case EndpointKind.GEMINI:
            if key is None:
                raise ConfigError(
                    "no API key for the Gemini API",
                    hint="set GEMINI_API_KEY (or GOOGLE_API_KEY), or use `--endpoint emulator`",
                )
            return Endpoint(kind, None, key, api_version)
        case EndpointKind.EMULATOR:
            if emulator_base_url is None:
                raise ConfigError("the embedded emulator has no address (it was not started)")
            # A real key from the environment is not sent to a throwaway local server.
            return Endpoint(kind, emulator_base_url, EMULATOR_API_KEY, api_version)
        case EndpointKind.URL:
            url = value.strip().rstrip("/")
            if key is not None:
                check_key_may_go_to(url, environ)
            return Endpoint(kind, url, key or EMULATOR_API_KEY, api_version)
        case EndpointKind.VERTEX:
            # No key: Vertex authenticates with credentials (live/vertex_target.py).
            return Endpoint(kind, None, "", api_version)
        case _:
            assert_never(kind)


def is_google_api_host(host: str) -> bool:
    """Google's API hosts, the only ones that get the key without being trusted explicitly."""
    host = host.lower().rstrip(".")
    return host == GOOGLE_API_HOST or (
        host.endswith(VERTEX_HOST_SUFFIX) and "." not in host.removesuffix(VERTEX_HOST_SUFFIX)
    )


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback IP: plain http there never leaves the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _trusted(url: str, environ: Mapping[str, str]) -> bool:
    trusted = environ.get(TRUST_VARIABLE, "").strip().rstrip("/")
    return bool(trusted) and trusted == url


def check_key_may_go_to(url: str, environ: Mapping[str, str]) -> None:
    """Refuse to send the environment's API key to `url` unless DESIGN §7 allows it.

    Raises:
        ConfigError: `url` is not Google's API over https, and not trusted by
            RECONCILER_TRUST_ENDPOINT (or trusted but plain http to a non-loopback host).
    """
    parts: SplitResult = urlsplit(url)
    host = parts.hostname or ""
    plain = parts.scheme != "https"
    if parts.username is None and parts.password is None:
        if not plain and is_google_api_host(host) and parts.port in (None, 443):
            return
        if _trusted(url, environ) and (not plain or is_loopback(host)):
            return
    shown = shown_url(url)
    if parts.username is not None or parts.password is not None:
        why = "its URL has user information (`…@` before the host), which can disguise the host"
        hint = "remove the user information from the endpoint URL"
    elif _trusted(url, environ):
        why = "it is plain http to a host that is not loopback, and the key never travels in clear"
        hint = "use https for a remote endpoint"
    else:
        why = (
            f"it is not Google's API over https, and {TRUST_VARIABLE} does not name it "
            "(an endpoint from reconciler.yaml could come from a pull request)"
        )
        hint = (
            f"to send your key there, set {TRUST_VARIABLE}={shown} outside the repository; "
            "to use an emulator, unset GEMINI_API_KEY/GOOGLE_API_KEY or use `endpoint: emulator`"
        )
    raise ConfigError(f"the API key is not sent to endpoint {shown}: {why}", hint=hint)
