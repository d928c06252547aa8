"""`endpoint: vertex` through the CLI (a subprocess, as users run it): the emulator's Vertex
`batchPredictionJobs` routes backed by a real Cloud Storage emulator, with no cloud at all."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import parse_tag
from tests.e2e.conftest import Project, file_job_spec, git, jsonl, text_request
from tests.e2e.vertex_env import (
    BUCKET,
    gcs,
    staged,
    vertex_client,
    vertex_emulator,
    vertex_jobs,
    vertex_project,
    vproject,
)
from tests.fixtures.gcs import storage_client

__all__ = ["gcs", "vertex_emulator", "vproject"]  # fixtures, used by name

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _eval_input(project: Project, count: int = 3, word: str = "prompt") -> None:
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"k{i}", "request": text_request(f"{word} {i}")} for i in range(count)]),
    )


def test_vertex_file_job_applies_collects_and_prints_results(
    vproject: Project, vertex_emulator: EmulatorHandle, gcs: str
) -> None:
    _eval_input(vproject)
    vproject.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    vproject.commit()

    applied = vproject.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    assert "batchPredictionJobs/" in applied.stderr + applied.stdout
    printed = vproject.run("results", "eval", "--print")
    lines = [json.loads(line) for line in printed.stdout.splitlines()]
    assert sorted(line["key"] for line in lines) == ["k0", "k1", "k2"]
    assert all(line["response"]["candidates"] for line in lines)
    attempt = vproject.state()["resources"]["eval"]["attempts"][0]
    assert attempt["endpoint"] == "vertex"
    token = parse_tag(attempt["tag"]).project
    assert attempt["output_file"].startswith(f"gs://{BUCKET}/reconciler/outputs/{token}/eval/")
    assert vproject.state()["resources"]["eval"]["results"]["succeeded"] == 3
    assert staged(gcs, "inputs") == []  # cleanup.inputs: deleted once collected
    [job] = vertex_jobs(vertex_emulator)
    assert parse_tag(job.display_name) is not None
    assert vproject.run("plan", "--detailed-exitcode").returncode == 0


def test_vertex_runs_with_no_cloud_on_the_embedded_emulators(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    proj = Project(root, "vertex")
    proj.write(
        "reconciler.yaml",
        "poll:\n  initial_seconds: 0.2\n  max_seconds: 0.5\nemulator:\n  job_seconds: 0.5\n"
        f"vertex:\n  project: demo\n  location: us-central1\n  staging: gs://{BUCKET}/rc\n"
        "  base_url: emulator\n",
    )
    _eval_input(proj, count=2)
    proj.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    proj.commit()

    applied = proj.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    assert len((root / "results/eval.jsonl").read_text().splitlines()) == 2
    # Jobs and staged objects outlive the command: the next one sees them and has nothing to do.
    assert proj.run("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.slow  # ~20 s: three CLI runs with two resources
def test_vertex_stages_an_unchanged_input_once_and_a_changed_one_again(
    tmp_path: Path, vertex_emulator: EmulatorHandle, gcs: str
) -> None:
    # Staged inputs kept after collection (cleanup.inputs deletes them by default).
    vproject = vertex_project(
        tmp_path / "kept", vertex_emulator.base_url, gcs, extra="cleanup:\n  inputs: false\n"
    )
    _eval_input(vproject)
    vproject.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    vproject.manifest("copy", file_job_spec("data/eval.jsonl", "results/copy.jsonl"))
    vproject.commit()
    assert vproject.run("apply", "--auto-approve", "--wait").returncode == 0
    assert len(staged(gcs, "inputs")) == 1  # two resources, one content: one object

    _eval_input(vproject, word="changed")
    vproject.commit("edit")
    planned = vproject.run("plan", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout
    assert vproject.run("apply", "--auto-approve", "--wait").returncode == 0

    assert len(staged(gcs, "inputs")) == 2
    lines = (vproject.root / "results/eval.jsonl").read_text()
    assert "changed 1" in lines


def test_vertex_multimodal_request_reads_local_and_gcs_media(vproject: Project, gcs: str) -> None:
    storage_client(gcs).bucket(BUCKET).blob("media/dog.png").upload_from_string(PNG)
    (vproject.root / "images").mkdir()
    (vproject.root / "images/cat.png").write_bytes(PNG)
    parts = [
        {"text": "Compare"},
        {"fileData": {"path": "images/cat.png", "mimeType": "image/png"}},
        {"fileData": {"fileUri": f"gs://{BUCKET}/media/dog.png", "mimeType": "image/png"}},
    ]
    vproject.write(
        "data/mm.jsonl", jsonl([{"key": "pets", "request": {"contents": [{"parts": parts}]}}])
    )
    vproject.manifest("pets", file_job_spec("data/mm.jsonl", "results/pets.jsonl"))
    vproject.commit()

    applied = vproject.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    [line] = [
        json.loads(x) for x in (vproject.root / "results/pets.jsonl").read_text().splitlines()
    ]
    assert line["key"] == "pets" and "response" in line, line
    assert line["response"]["usageMetadata"]["promptTokenCount"] > 2 * 258  # two images read


def test_vertex_image_generation_collects_results_and_extracts_the_images(
    vproject: Project, gcs: str
) -> None:
    # The seed guide's image job: an image model asked for text and images; Vertex answers
    # with `inlineData` parts, which collection writes out as files, as on the Developer API.
    config = {"responseModalities": ["TEXT", "IMAGE"]}
    prompts = {"mountain": "A serene mountain landscape", "city": "A futuristic city"}
    vproject.write(
        "data/images.jsonl",
        jsonl(
            [
                {"key": key, "request": {**text_request(text), "generationConfig": config}}
                for key, text in prompts.items()
            ]
        ),
    )
    vproject.manifest(
        "images",
        file_job_spec("data/images.jsonl", "results/images/", model="gemini-2.5-flash-image"),
    )
    vproject.commit()

    applied = vproject.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    folder = vproject.root / "results/images"
    lines = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]
    assert sorted(line["key"] for line in lines) == sorted(prompts)
    for line in lines:
        parts = line["response"]["candidates"][0]["content"]["parts"]
        assert not any("inlineData" in part for part in parts), "the image stayed inline"
        [image] = [part["file"]["path"] for part in parts if "file" in part]
        assert (folder / image).read_bytes().startswith(PNG[:8])
    assert vproject.state()["resources"]["images"]["attempts"][0]["endpoint"] == "vertex"
    assert vproject.run("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.slow  # ~20 s: five CLI runs; the digest rules are unit-tested in test_vertex_sources.py
def test_vertex_reads_a_gcs_source_in_place_and_plans_again_when_the_object_changes(
    vproject: Project, gcs: str
) -> None:
    blob = storage_client(gcs).bucket(BUCKET).blob("shared/eval.jsonl")
    rows = [{"key": f"k{i}", "request": text_request(f"remote {i}")} for i in range(2)]
    blob.upload_from_string(jsonl(rows))
    spec = f"  model: gemini-2.5-flash\n  source:\n    gcs: gs://{BUCKET}/shared/eval.jsonl\n"
    vproject.manifest("remote", spec + "  output: results/remote.jsonl\n")
    vproject.commit()

    assert vproject.run("apply", "--auto-approve", "--wait").returncode == 0
    assert vproject.run("plan", "--detailed-exitcode").returncode == 0
    assert staged(gcs, "inputs") == []  # referenced in place, never copied
    assert blob.exists()  # and never deleted by cleanup: it is the user's object
    first = (vproject.root / "results/remote.jsonl").read_text()
    assert "remote 1" in first

    rows.append({"key": "k9", "request": text_request("remote added")})
    blob.upload_from_string(jsonl(rows))
    planned = vproject.run("plan", "--detailed-exitcode")
    assert planned.returncode == 2 and "source.sha256" in planned.stdout, planned.stdout
    assert vproject.run("apply", "--auto-approve", "--wait").returncode == 0

    keys = [
        json.loads(x)["key"]
        for x in (vproject.root / "results/remote.jsonl").read_text().splitlines()
    ]
    assert sorted(keys) == ["k0", "k1", "k9"]


def test_vertex_refuses_inline_sources_embeddings_and_priority_at_validate(
    vproject: Project,
) -> None:
    vproject.manifest(
        "inline",
        "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        "      - contents: [{parts: [{text: 'one'}]}]\n  output: results/inline.jsonl\n",
    )
    _eval_input(vproject)
    vproject.manifest(
        "embed",
        file_job_spec(
            "data/eval.jsonl",
            "results/embed.jsonl",
            model="gemini-embedding-001",
            extra="  task: embed\n  config:\n    priority: 5\n",
        ),
    )

    validated = vproject.run("validate")

    assert validated.returncode != 0
    err = validated.stderr + validated.stdout
    assert "manifests/inline.yaml:" in err and "no inline requests" in err
    assert "no `task: embed`" in err and "no batch priority" in err


OPEN = ("JOB_STATE_PENDING", "JOB_STATE_RUNNING")


def _job_state(emulator: EmulatorHandle, name: str) -> str:
    client = vertex_client(emulator)
    state = str(client.batches.get(name=name).state.name)
    client.close()
    return state


@pytest.mark.slow  # ~60 s: two projects, seven CLI runs
def test_two_vertex_projects_with_the_same_job_each_adopt_replace_clean_and_destroy_their_own(
    tmp_path: Path, vertex_emulator: EmulatorHandle, gcs: str
) -> None:
    # One Vertex project, one staging prefix, the same resource name, model and input: each
    # project adopts, replaces, cleans up and destroys only its own jobs and staged objects.
    a, b = (
        vertex_project(tmp_path / name, vertex_emulator.base_url, gcs, project_id=name)
        for name in ("team-a", "team-b")
    )
    for proj in (a, b):
        _eval_input(proj)
        proj.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
        proj.commit()
    vertex_emulator.configure(job_seconds=300)
    assert b.run("apply", "--auto-approve", "--no-wait").returncode == 0
    [theirs] = [x["job_name"] for x in b.state()["resources"]["eval"]["attempts"]]
    their_input = b.state()["resources"]["eval"]["input"]["file_name"]
    vertex_emulator.configure(job_seconds=0.6)

    # A crash after the create: the next apply adopts its own job, never B's identical one.
    killed = a.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: "job-created"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    adopted = a.run("apply", "--auto-approve", "--wait")
    assert adopted.returncode == 0, adopted.stderr
    [ours] = [x["job_name"] for x in a.state()["resources"]["eval"]["attempts"]]
    assert ours != theirs, "A adopted B's job"
    assert len(vertex_jobs(vertex_emulator)) == 2

    # A collected and deleted its staged input; B's running job still reads its own.
    assert their_input in [f"gs://{BUCKET}/{name}" for name in staged(gcs, "inputs")]
    assert a.state()["resources"]["eval"]["input"]["file_name"] != their_input

    replaced = a.run("apply", "--auto-approve", "--wait", "--replace", "eval")
    assert replaced.returncode == 0, replaced.stderr
    assert _job_state(vertex_emulator, theirs) in OPEN, "B's job was touched"
    assert b.run("plan", "--detailed-exitcode").returncode == 0, "B sees A's jobs as its own"

    destroyed = b.run("destroy", "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stderr
    assert _job_state(vertex_emulator, theirs) == "JOB_STATE_CANCELLED"
    assert {_job_state(vertex_emulator, x["job_name"]) for x in a.state()["resources"]["eval"][
        "attempts"]} == {"JOB_STATE_SUCCEEDED"}  # fmt: skip
    assert a.run("plan", "--detailed-exitcode").returncode == 0
    owners = Counter(parse_tag(job.display_name).project for job in vertex_jobs(vertex_emulator))
    assert sorted(owners.values()) == [1, 2], owners


@pytest.mark.slow  # ~15 s: five CLI runs on two endpoints
def test_switching_a_project_from_gemini_to_vertex_reruns_only_what_was_not_collected(
    tmp_path: Path, vertex_emulator: EmulatorHandle, gcs: str
) -> None:
    # The emulator serves both protocols: the project first runs on the Developer API (its
    # URL as the endpoint), then on Vertex with the same manifests and state.
    proj = vertex_project(tmp_path / "repo", vertex_emulator.base_url, gcs)
    proj.endpoint = vertex_emulator.base_url
    _eval_input(proj)
    proj.manifest("done", file_job_spec("data/eval.jsonl", "results/done.jsonl"))
    proj.commit()
    assert proj.run("apply", "--auto-approve", "--wait").returncode == 0
    vertex_emulator.configure(job_seconds=300)  # the next job is still running at the switch
    proj.manifest("open", file_job_spec("data/eval.jsonl", "results/open.jsonl"))
    proj.commit("add open")
    assert proj.run("apply", "--auto-approve", "--no-wait").returncode == 0
    before = proj.state()["resources"]
    assert before["done"]["attempts"][0]["cost_usd"] is not None
    vertex_emulator.configure(job_seconds=0.6)

    proj.endpoint = "vertex"
    planned = proj.run("plan", "--detailed-exitcode")

    assert planned.returncode == 2, planned.stderr
    assert "open" in planned.stdout and "its job ran on another endpoint" in planned.stdout
    document = json.loads(proj.run("plan", "--format", "json").stdout)
    changes = {
        a["resource"]: (a["kind"], a["reason"]) for a in document["actions"] if a["kind"] != "noop"
    }
    assert changes == {"open": ("recreate", "endpoint_changed")}, changes
    applied = proj.run("apply", "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stderr

    after = proj.state()["resources"]
    assert after["done"] == before["done"], "the collected resource was touched"
    old, new = after["open"]["attempts"]
    assert old == before["open"]["attempts"][0], "the Developer API attempt was lost"
    assert (old["endpoint"], new["endpoint"]) == ("gemini", "vertex")
    assert new["output_file"].startswith(f"gs://{BUCKET}/")
    assert after["open"]["results"]["succeeded"] == 3
    assert (proj.root / "results/done.jsonl").read_text().count("\n") == 3
    assert proj.run("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.slow  # ~20 s: seven CLI runs, every command a user runs, each checked
def test_a_service_account_key_never_reaches_state_plans_logs_events_or_errors(
    vproject: Project, vertex_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    marker = "SECRET-KEY-MATERIAL-7f3a"
    key = tmp_path / "key.json"
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "demo",
                "private_key_id": f"{marker}-id",
                "private_key": f"-----BEGIN PRIVATE KEY-----\n{marker}\n-----END PRIVATE KEY-----\n",
                "client_email": "runner@demo.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    _eval_input(vproject)
    vproject.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    vproject.manifest("broken", file_job_spec("data/eval.jsonl", "results/broken.jsonl",
                                              model="gemini-0-unknown"))  # fmt: skip
    vproject.commit()
    vertex_emulator.configure(fail_next_jobs=1, accept_unknown_models=False)

    said = [
        vproject.run("-v", "validate", env=env),
        vproject.run("-v", "plan", "--out", str(vproject.root / "plan.bin"), env=env),
        vproject.run("-v", "apply", "--auto-approve", "--wait", "--format", "json", env=env),
        vproject.run("-v", "apply", "--auto-approve", "--wait", env=env),
        vproject.run("-v", "status", env=env),
        vproject.run("-v", "results", "eval", "--print", env=env),
        vproject.run("-v", "destroy", "--auto-approve", env=env),
    ]

    assert any(run.returncode != 0 for run in said), [(r.args, r.returncode) for r in said]
    for run in said:
        assert marker not in run.stdout + run.stderr, run.args
        assert "Traceback" not in run.stderr, run.stderr
    written = [p for p in vproject.root.rglob("*") if p.is_file() and ".git" not in p.parts]
    assert any(p.name == "plan.bin" for p in written)
    for path in written:
        assert marker.encode() not in path.read_bytes(), path
