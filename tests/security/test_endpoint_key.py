"""Keys only where they belong: a pull request that edits `endpoint:` in reconciler.yaml never
receives the API key, whatever else it changes (DESIGN §7)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reconciler.clock import SystemClock
from reconciler.config import Project, ProjectConfig
from reconciler.errors import ConfigError
from reconciler.live.endpoint import (
    EMULATOR_API_KEY,
    TRUST_VARIABLE,
    check_key_may_go_to,
    resolve_endpoint,
)
from reconciler.live.gemini import open_adapter

from .conftest import SECRET, Recorder, run_cli, write_project

pytestmark = pytest.mark.secret_scan
KEY_ENV = {"GEMINI_API_KEY": SECRET}


def _snapshot(project: Project, environ: dict[str, str]) -> None:
    async def body() -> None:
        async with open_adapter(project, clock=SystemClock(), environ=environ) as adapter:
            await adapter.snapshot(include_files=False)

    asyncio.run(body())


def test_pr_controlled_endpoint_never_receives_the_key(recorder: Recorder, tmp_path: Path) -> None:
    project = Project(tmp_path, ProjectConfig(endpoint=recorder.url), None)
    with pytest.raises(ConfigError) as caught:
        _snapshot(project, KEY_ENV)
    assert TRUST_VARIABLE in (caught.value.hint or "")
    assert recorder.headers == [] and not recorder.saw_secret()


def test_plan_with_a_pr_endpoint_in_reconciler_yaml_fails_before_sending_the_key(
    recorder: Recorder, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "repo", f"endpoint: {recorder.url}\n")
    result = run_cli(root, "-vv", "plan", env=KEY_ENV)
    assert result.returncode == 1, result.stderr
    assert "API key is not sent" in result.stderr and TRUST_VARIABLE in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert not recorder.saw_secret()


def test_endpoint_trusted_from_the_environment_receives_the_key(
    recorder: Recorder, tmp_path: Path
) -> None:
    # The control: the recorder does see a key when one is allowed to go there.
    project = Project(tmp_path, ProjectConfig(endpoint=recorder.url), None)
    _snapshot(project, {**KEY_ENV, TRUST_VARIABLE: recorder.url + "/"})
    assert recorder.saw_secret()


def test_without_a_key_in_the_environment_a_custom_endpoint_gets_the_placeholder(
    recorder: Recorder, tmp_path: Path
) -> None:
    _snapshot(Project(tmp_path, ProjectConfig(endpoint=recorder.url), None), {})
    assert recorder.headers
    assert {seen.get("x-goog-api-key") for seen in recorder.headers} == {EMULATOR_API_KEY}


@pytest.mark.parametrize(
    "url",
    [
        "https://generativelanguage.googleapis.com",
        "https://us-central1-aiplatform.googleapis.com/",
        "https://GENERATIVELANGUAGE.googleapis.com:443",
    ],
)
def test_google_hosts_over_https_get_the_key(url: str) -> None:
    endpoint = resolve_endpoint(url, api_version="v1beta", environ=KEY_ENV)
    assert endpoint.api_key == SECRET


@pytest.mark.parametrize(
    "url",
    [
        "http://generativelanguage.googleapis.com",  # plain http
        "https://generativelanguage.googleapis.com.evil.example",
        "https://evil.example/generativelanguage.googleapis.com",
        "https://x.us-central1-aiplatform.googleapis.com",
        "https://user@generativelanguage.googleapis.com",
        "https://generativelanguage.googleapis.com:8443",
        "http://127.0.0.1:8765",  # loopback, but not trusted
        "https://proxy.example",
    ],
)
def test_other_endpoints_are_refused_while_a_key_is_set(url: str) -> None:
    with pytest.raises(ConfigError, match="API key is not sent"):
        resolve_endpoint(url, api_version="v1beta", environ=KEY_ENV)


def test_trusted_endpoint_over_plain_http_only_on_loopback() -> None:
    check_key_may_go_to("http://127.0.0.1:8765", {TRUST_VARIABLE: "http://127.0.0.1:8765"})
    check_key_may_go_to("http://[::1]:8765", {TRUST_VARIABLE: "http://[::1]:8765"})
    check_key_may_go_to("https://proxy.example/g", {TRUST_VARIABLE: "https://proxy.example/g"})
    with pytest.raises(ConfigError, match="plain http"):
        check_key_may_go_to("http://proxy.example", {TRUST_VARIABLE: "http://proxy.example"})
    with pytest.raises(ConfigError):
        # Trust is exact: another path on the trusted host is another endpoint.
        check_key_may_go_to("https://proxy.example/x", {TRUST_VARIABLE: "https://proxy.example"})


def test_embedded_emulator_never_gets_the_real_key() -> None:
    endpoint = resolve_endpoint(
        "emulator", api_version="v1beta", environ=KEY_ENV, emulator_base_url="http://127.0.0.1:1"
    )
    assert endpoint.api_key == EMULATOR_API_KEY
