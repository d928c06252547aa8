"""Ctrl-C during `apply`: one line that says what goes on at the service, exit 130, no
traceback, and the next apply resumes with the jobs that exist instead of creating new ones.

The CLI runs in a subprocess and gets a real SIGINT. When it is sent is read from the world,
not guessed: the emulator's call counts (an upload or download under way, held by the
emulator's latency setting) or the state file (a job recorded and held pending).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.emulator import EmulatorHandle
from reconciler.errors import ReconcilerError
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request
from tests.e2e.test_apply import _jobs_by_resource

APPLY = ("apply", "--auto-approve", "--wait")
RESUME_HINT = "run `reconciler apply` to resume"


def _start_apply(project: Project, endpoint: str) -> subprocess.Popen[str]:
    return project.start(*APPLY, env={"RECONCILER_ENDPOINT": endpoint})


def _when(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Wait until `condition` holds (polled), failing if the process ends first."""
    deadline = time.monotonic() + 60
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"apply ended before the moment to interrupt it:\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the moment to interrupt apply never came")
        time.sleep(0.02)


def _interrupt(process: subprocess.Popen[str]) -> str:
    """SIGINT, then the process's stderr once it has exited 130."""
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    return err


def _one_input(project: Project) -> None:
    lines = [{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(3)]
    project.write("data/eval.jsonl", jsonl(lines))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()


def _recorded_jobs(project: Project) -> int:
    """Jobs recorded so far, journal included: while apply holds the lock, its writes go to the
    state's journal and reach the file only when the lock is released."""
    try:
        state = project.state()
    except (OSError, ValueError, ReconcilerError):
        return 0
    return sum(
        1
        for record in state.get("resources", {}).values()
        for attempt in record.get("attempts", [])
        if attempt.get("job_name")
    )


def test_ctrl_c_mid_upload_exits_130_with_one_line_and_the_next_apply_creates_one_job(
    project: Project, emulator: EmulatorHandle
) -> None:
    _one_input(project)
    # Every call waits, so the upload is still under way when the signal comes.
    emulator.configure(latency_seconds=0.4)
    process = _start_apply(project, emulator.base_url)
    _when(lambda: emulator.calls().get("files.upload_multipart", 0) > 0, process)

    err = _interrupt(process)

    assert (
        err.strip().splitlines()[-1]
        == f"interrupted: 0 job(s) keep running at the service; {RESUME_HINT}"
    )
    emulator.configure(latency_seconds=0.0)
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert _jobs_by_resource(emulator, project) == {"eval": 1}
    assert (project.root / "results" / "eval.jsonl").exists()


def test_ctrl_c_while_jobs_run_names_them_and_the_next_apply_adopts_them(
    project: Project, emulator: EmulatorHandle
) -> None:
    _one_input(project)
    emulator.configure(job_seconds=3.0)
    process = _start_apply(project, emulator.base_url)
    _when(lambda: _recorded_jobs(project) == 1, process)

    err = _interrupt(process)

    assert (
        err.strip().splitlines()[-1]
        == f"interrupted: 1 job(s) keep running at the service; {RESUME_HINT}"
    )
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert _jobs_by_resource(emulator, project) == {"eval": 1}, "no new job on resume"
    assert (project.root / "results" / "eval.jsonl").exists()


def test_ctrl_c_mid_download_leaves_no_partial_results_and_the_next_apply_collects(
    project: Project, emulator: EmulatorHandle
) -> None:
    _one_input(project)
    process = _start_apply(project, emulator.base_url)
    _when(lambda: emulator.calls().get("batches.create_generate", 0) > 0, process)
    emulator.configure(latency_seconds=0.4)
    _when(lambda: emulator.calls().get("files.download", 0) > 0, process)

    err = _interrupt(process)

    assert (
        err.strip().splitlines()[-1]
        == f"interrupted: 0 job(s) keep running at the service; {RESUME_HINT}"
    )
    assert not (project.root / "results" / "eval.jsonl").exists()
    emulator.configure(latency_seconds=0.0)
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert _jobs_by_resource(emulator, project) == {"eval": 1}
    assert len((project.root / "results" / "eval.jsonl").read_text().splitlines()) == 3


def test_ctrl_c_with_the_embedded_emulator_shuts_it_down_quietly(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    project = Project(root, "emulator")
    project.write(
        "reconciler.yaml",
        "manifests: manifests\nstate: state/reconciler.state.json\nendpoint: emulator\n"
        "emulator:\n  job_seconds: 600\n",
    )
    lines = [{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(3)]
    project.write("data/eval.jsonl", jsonl(lines))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    process = _start_apply(project, "emulator")
    _when(lambda: _recorded_jobs(project) == 1, process)

    err = _interrupt(process)

    assert (
        err.strip().splitlines()[-1]
        == f"interrupted: 1 job(s) keep running at the service; {RESUME_HINT}"
    )


# -- before the run: loading, planning, the confirmation prompt -------------------------------

NOTHING_CHANGED = "interrupted: nothing was changed at the service"


class Terminal:
    """The CLI in a subprocess whose controlling terminal is a pseudo-terminal, as a user's
    shell runs it: Ctrl-C is the byte the terminal turns into SIGINT for the process group."""

    def __init__(self, project: Project, endpoint: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        env.update({"RECONCILER_ENDPOINT": endpoint, "NO_COLOR": "1", "TERM": "dumb"})
        self._master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "-C", str(project.root), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            # The new session takes the pseudo-terminal as its controlling terminal.
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.output = ""

    def _read(self, timeout: float) -> bool:
        """Append what the terminal shows within `timeout`; False once the process is gone."""
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            return False
        self.output += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + 60
        while text not in self.output:
            if not self._read(0.1) or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"{text!r} never appeared on the terminal:\n{self.output}")

    def wait_until_reading_the_terminal(self) -> None:
        """Wait until the process is blocked reading its standard input (Linux: the `read`
        system call on fd 0 in /proc/<pid>/syscall). A Ctrl-C typed between the prompt's text
        appearing and that read is a race inside CPython's input(): the signal's flag is set
        after its last check and the read then blocks until a key comes. A person never types
        within those microseconds; a test does, unless it waits for the read."""
        syscall = Path(f"/proc/{self.process.pid}/syscall")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                fields = syscall.read_text().split()
            except OSError:
                return  # no /proc (not Linux): nothing to wait for
            if fields[:2] == ["0", "0x0"]:  # read(0, ...): blocked at the prompt
                return
            self._read(0.05)
        pytest.fail(f"the process never read its terminal:\n{self.output}")

    def ctrl_c(self) -> int:
        """Type Ctrl-C; the exit code once the process has ended and its output is read."""
        os.write(self._master, b"\x03")
        deadline = time.monotonic() + 15
        while self._read(0.1) and time.monotonic() < deadline:
            pass
        try:
            return self.process.wait(timeout=15)
        finally:
            os.close(self._master)


def _world(project: Project, emulator: EmulatorHandle) -> tuple[bytes | None, dict[str, int]]:
    """The state file's bytes (None when there is none) and the emulator's call counts of the
    calls that change something."""
    path = project.root / "state" / "reconciler.state.json"
    journal_path = path.with_name(path.name + ".journal")
    assert not journal_path.exists() or not journal_path.read_bytes(), "a journal was left"
    changing = {
        call: count
        for call, count in emulator.calls().items()
        if not call.endswith((".list", ".get"))
    }
    return (path.read_bytes() if path.exists() else None), changing


def _assert_one_line(terminal: Terminal, code: int) -> None:
    assert code == 130, terminal.output
    assert "Traceback" not in terminal.output, terminal.output
    assert "Aborted" not in terminal.output, terminal.output
    assert terminal.output.strip().splitlines()[-1].strip() == NOTHING_CHANGED, terminal.output


@pytest.mark.parametrize(
    ("command", "question"),
    [("apply", "Apply these changes?"), ("destroy", "Cancel and forget these resources?")],
)
def test_ctrl_c_at_the_confirmation_prompt_exits_130_and_changes_nothing(
    project: Project, emulator: EmulatorHandle, command: str, question: str
) -> None:
    _one_input(project)
    if command == "destroy":
        assert project.run(*APPLY).returncode == 0
    emulator.reset_calls()
    before = _world(project, emulator)
    terminal = Terminal(project, emulator.base_url, command)
    terminal.wait_for(question)
    terminal.wait_until_reading_the_terminal()

    _assert_one_line(terminal, terminal.ctrl_c())

    assert _world(project, emulator) == before
    again = project.run("plan")
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("command", ["plan", "apply", "status"])
def test_ctrl_c_while_the_service_is_listed_exits_130_and_changes_nothing(
    project: Project, emulator: EmulatorHandle, command: str
) -> None:
    _one_input(project)
    emulator.reset_calls()
    before = _world(project, emulator)
    # Every call waits, so the listing is still under way when Ctrl-C comes.
    emulator.configure(latency_seconds=5.0)
    terminal = Terminal(project, emulator.base_url, command)
    deadline = time.monotonic() + 60
    while not emulator.calls().get("batches.list"):
        assert terminal.process.poll() is None and time.monotonic() < deadline, terminal.output
        time.sleep(0.02)

    _assert_one_line(terminal, terminal.ctrl_c())

    emulator.configure(latency_seconds=0.0)
    assert _world(project, emulator) == before
