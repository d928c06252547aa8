"""Secrets in the endpoint URL itself (user information, a `key=` query) and on the paths
added later (`state gc`, `state show` with `base_url`, `--format json` events, `doctor`,
errors of a refusing or unreachable endpoint): in no output and no file of the project."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from reconciler.cli.main import _RedactingFormatter
from reconciler.emulator import running_emulator
from reconciler.errors import ConfigError
from reconciler.live.endpoint import TRUST_VARIABLE, check_key_may_go_to

from .conftest import SECRET, Recorder, run_cli, write_project

pytestmark = pytest.mark.secret_scan

URL_SECRET = "urlS3cretToken-7d2e"


def _leaked(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def _with_user(base_url: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return f"{scheme}://reconciler:{URL_SECRET}@{rest}"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.slow  # eleven CLI runs
def test_credentials_in_the_endpoint_url_reach_no_output_state_or_file(tmp_path: Path) -> None:
    root = write_project(tmp_path / "repo", "state: state/reconciler.state.json\n", requests=2)
    outputs: list[tuple[tuple[str, ...], str]] = []
    with running_emulator(tmp_path / "emu", job_seconds=0.2) as emu:
        env = {"RECONCILER_ENDPOINT": _with_user(emu.base_url)}  # no key: none is sent
        for args in (
            ("-vv", "plan", "--out", str(root / "plan.bin")),
            ("-vv", "apply", str(root / "plan.bin"), "--wait", "--timeout", "60s",
             "--format", "json"),
            ("-vv", "state", "show", "poems"),
            ("-vv", "state", "pull"),
            ("-vv", "status", "--format", "json"),
            ("-vv", "state", "gc"),
            ("-vv", "doctor"),
        ):  # fmt: skip
            result = run_cli(root, *args, env=env)
            outputs.append((args, result.stdout + result.stderr))
            assert args[1] == "doctor" or result.returncode == 0, (args, result.stderr[-1500:])
    # An endpoint nobody answers at, and one the key is refused for (user information).
    gone = run_cli(
        root, "-vv", "--debug", "apply", "--auto-approve",
        env={"RECONCILER_ENDPOINT": _with_user(_closed_port_url())},
    )  # fmt: skip
    outputs.append((("unreachable",), gone.stdout + gone.stderr))
    assert gone.returncode != 0
    url = _with_user(_closed_port_url())
    for trust in ({}, {TRUST_VARIABLE: url}):
        keyed = run_cli(
            root, "-vv", "plan", env={"RECONCILER_ENDPOINT": url, "GEMINI_API_KEY": SECRET, **trust}
        )
        outputs.append((("key refused", *trust), keyed.stdout + keyed.stderr))
        assert keyed.returncode != 0 and "user information" in keyed.stderr

    assert (root / "results" / "poems.jsonl").is_file()
    assert [args for args, text in outputs if URL_SECRET in text or SECRET in text] == []
    assert _leaked(root, URL_SECRET) == [] and _leaked(root, SECRET) == []
    # What the state says instead: where the jobs went, without the credentials.
    shown = next(text for args, text in outputs if args[1:3] == ("state", "show"))
    assert f'"base_url": "{emu.base_url.rstrip("/")}"' in shown


def test_an_api_key_in_the_endpoint_query_is_not_echoed_in_the_refusal(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = write_project(tmp_path / "repo", "state: state/reconciler.state.json\n")
    url = f"{recorder.url}/?key={URL_SECRET}"
    result = run_cli(
        root, "-vv", "plan", env={"RECONCILER_ENDPOINT": url, "GEMINI_API_KEY": SECRET}
    )
    text = result.stdout + result.stderr
    assert result.returncode != 0 and "is not sent to endpoint" in text
    assert URL_SECRET not in text and SECRET not in text
    assert _leaked(root, URL_SECRET) == []
    assert not recorder.saw_secret(SECRET)


@pytest.mark.parametrize(
    "line",
    [
        f'HTTP Request: GET http://reconciler:{URL_SECRET}@127.0.0.1:8765/v1beta/files "200 OK"',
        f"POST https://{URL_SECRET}@proxy.example/upload/v1beta/files?key={URL_SECRET}&alt=json",
        f"GET http://127.0.0.1:1/v1beta/batches?pageSize=100&key={URL_SECRET}",
    ],
)
def test_log_lines_lose_the_user_information_and_key_of_every_url(line: str) -> None:
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, line, None, None)
    shown = _RedactingFormatter("%(message)s").format(record)
    assert URL_SECRET not in shown
    assert "127.0.0.1" in shown or "proxy.example" in shown


@pytest.mark.parametrize("trusted", [False, True])
def test_a_refused_endpoint_is_named_without_its_credentials(trusted: bool) -> None:
    url = f"https://reconciler:{URL_SECRET}@proxy.example/v1?key={URL_SECRET}"
    environ = {TRUST_VARIABLE: url} if trusted else {}
    with pytest.raises(ConfigError) as refused:
        check_key_may_go_to(url, environ)
    text = f"{refused.value.message} {refused.value.hint}"
    assert URL_SECRET not in text
    assert "https://proxy.example/v1" in text and "user information" in text
