"""The web view over plain HTTP (no browser needed): read-only, local, and confined to the
project -- whatever a URL names, and wherever a results line's image points."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.browser.conftest import API_KEY, CHANGED_KEY, Demo

PAGES = (
    "/",
    "/costs",
    "/resources/eval-summaries",
    "/resources/eval-summaries/results",
    "/resources/eval-summaries/results?q=eval&failures=1",
    f"/resources/eval-summaries/diff?key={CHANGED_KEY}&a=1",
)


@pytest.mark.secret_scan
def test_no_page_shows_the_api_key(demo: Demo) -> None:
    for path in PAGES:
        status, body = demo.get(path)
        assert status == 200, path
        assert API_KEY not in body, path


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_routes_exist(demo: Demo, method: str) -> None:
    request = urllib.request.Request(demo.url + "/", method=method, data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405


def test_a_page_asked_for_under_another_host_name_is_refused(demo: Demo) -> None:
    # A site that rebinds its own name to 127.0.0.1 would send its name as Host.
    status, _ = demo.get("/", Host="attacker.example")
    assert status == 400


@pytest.mark.hostile_input
@pytest.mark.parametrize(
    "path",
    [
        "/resources/image-generation/files/..%2F..%2Freconciler.yaml",
        "/resources/image-generation/files/..%2F..%2F..%2Femulator%2Femulator.sqlite3",
        "/resources/image-generation/files/%2Fetc%2Fpasswd",
        "/resources/image-generation/files/results.jsonl",
        "/resources/..%2Freconciler.yaml/results",
        "/resources/nothing-like-this",
    ],
)
def test_paths_outside_the_results_folder_are_not_served(demo: Demo, path: str) -> None:
    status, body = demo.get(path)
    assert status == 404
    assert "manifests:" not in body and "root:" not in body


@pytest.mark.hostile_input
def test_an_image_symlinked_out_of_the_project_is_not_served(demo: Demo, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG secret")
    link = demo.root / "results" / "image-generation" / "leak.png"
    link.symlink_to(outside)
    try:
        status, body = demo.get("/resources/image-generation/files/leak.png")
    finally:
        link.unlink()
    assert status == 404 and "secret" not in body


def test_an_image_beside_the_results_is_served_with_its_type(demo: Demo) -> None:
    image = next((demo.root / "results" / "image-generation").glob("*.png"))
    request = urllib.request.Request(f"{demo.url}/resources/image-generation/files/{image.name}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Content-Type"] == "image/png"
        assert answer.read() == image.read_bytes()


def test_the_view_binds_only_the_loopback_interface_by_default(demo: Demo) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))  # picks the outward interface; sends nothing
        address = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("this machine has no interface but loopback")
    port = int(demo.url.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection((address, port), timeout=5):
        pass


def test_a_diff_says_when_the_later_attempt_did_not_run_that_request(demo: Demo) -> None:
    # The second apply re-ran only the changed request (rerun: changed).
    status, body = demo.get("/resources/eval-summaries/diff?key=eval-003&a=1")
    assert status == 200
    assert "attempt 2 ran only some requests" in body
    assert "Summarise in one sentence" in body  # attempt 1's answer


def test_a_port_in_use_is_one_error_line_with_a_hint(demo: Demo) -> None:
    port = demo.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(demo.root), "ui", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
