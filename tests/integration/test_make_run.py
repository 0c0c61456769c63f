"""`make run`'s demo: web and worker from the Procfile, the simulator and stand-ins, sample
calls, and every expected alert printed as it arrives; and a stop, by SIGTERM or Ctrl-C,
that leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def demo_env() -> dict[str, str]:
    """This environment without any callwatch configuration, the venv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "REDIS_URL", "SLACK_", "ALERT_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_make_run_plays_sample_calls_and_shows_their_alerts() -> None:
    """The demo ends with every sample call's alert in Slack and at the webhook receiver."""
    result = subprocess.run(
        [sys.executable, "-m", "devtools.run", "--once", "--port", str(free_port())],
        cwd=ROOT, env=demo_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "callwatch is up" in out
    assert "Twilio simulator: http://127.0.0.1:" in out
    assert "-m devtools.play sdk-error --url http://127.0.0.1:" in out
    assert "all 5 alerts arrived in Slack and at the webhook receiver." in out
    assert out.count("── Slack message (200)") == 5
    assert out.count("(verified, 200)") == 5
    assert "(client:bob) was found from phone leg CA" in out  # the inbound-to-agent call
    assert "+14155550123" not in (ROOT / ".run" / "worker.log").read_text()
    # who and what first; this hour's digest; a button click to paste
    assert ":rotating_light: alice → +1********23: A connection error occurred" in out
    assert "callwatch digest, " in out and "By agent: alice (4)" in out
    assert "curl -sS -X POST http://127.0.0.1:" in out and "/slack/actions" in out


# --- stopping -------------------------------------------------------------------------

@dataclass(frozen=True)
class Proc:
    """A process as /proc shows it: pid, start time (so a reused pid is not mistaken
    for it) and command line."""

    pid: int
    started: str
    name: str
    cmdline: list[str]

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # a zombie has stopped already


def descendants(pid: int) -> list[Proc]:
    """Every process below ``pid`` (children of all its threads, recursively)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in map(int, (task / "children").read_text().split()):
                started = _start_time(child)
                with contextlib.suppress(OSError):
                    name = Path(f"/proc/{child}/comm").read_text().strip()
                    raw = Path(f"/proc/{child}/cmdline").read_bytes()
                    if started is not None:
                        found.append(Proc(child, started, name,
                                          raw.decode(errors="replace").split("\0")))
                        found.extend(descendants(child))
    return found


class MakeRun:
    """``python -m devtools.run`` in a session of its own (as a terminal's foreground job),
    its output in a file. ``close`` SIGKILLs whatever it or its children left running."""

    def __init__(self, *extra: str, env: dict[str, str] | None = None) -> None:
        self.out = Path(tempfile.mkstemp(prefix="callwatch-make-run-", suffix=".out")[1])
        with self.out.open("w") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devtools.run", "--port", str(free_port()), *extra],
                cwd=ROOT, env=env or demo_env(), stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.procs: list[Proc] = []

    @property
    def output(self) -> str:
        return self.out.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process.poll() is None, f"make run exited:\n{self.output[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output[-3000:]}"
            time.sleep(0.1)

    def children_and_redis_folder(self) -> tuple[list[Proc], Path]:
        """The processes make run started (web, worker, their children, Redis) and the
        private Redis's folder, once all of them are up."""
        self.procs = descendants(self.process.pid)
        (redis,) = [p for p in self.procs if p.name == "redis-server"]
        folder = Path(os.readlink(f"/proc/{redis.pid}/cwd"))  # redis-server runs in its --dir
        assert folder.is_dir()
        commands = " ".join(" ".join(p.cmdline) for p in self.procs)
        assert "gunicorn" in commands and "workers.worker" in commands
        return self.procs, folder

    def close(self) -> None:
        leftovers = [*self.procs, *(descendants(self.process.pid)
                                    if self.process.poll() is None else [])]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for leftover in leftovers:
            if leftover.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(leftover.pid, signal.SIGKILL)
        self.process.wait()
        self.out.unlink()


@contextlib.contextmanager
def running_make_run(*extra: str, env: dict[str, str] | None = None) -> Iterator[MakeRun]:
    run = MakeRun(*extra, env=env)
    try:
        yield run
    finally:
        run.close()


def assert_nothing_left(procs: list[Proc], folder: Path) -> None:
    alive = [" ".join(p.cmdline) for p in procs if p.alive()]
    assert alive == [], f"still running: {alive}"
    assert not folder.exists(), f"{folder} was left behind"


@pytest.mark.slow
def test_sigterm_mid_run_stops_every_process_and_removes_redis_folder() -> None:
    """SIGTERM while the sample calls play: web, worker, Redis all exit; no temp folder stays."""
    with running_make_run() as run:
        run.wait_for("played ")
        procs, folder = run.children_and_redis_folder()
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=60) == 0, run.output[-3000:]
        assert_nothing_left(procs, folder)
        assert "SIGTERM: everything it started has stopped." in run.output


@pytest.mark.slow
def test_ctrl_c_stops_web_and_worker_before_redis() -> None:
    """Ctrl-C (SIGINT to the whole foreground group): the worker stops while Redis still
    answers it (no wait for a lost Redis), then Redis stops and its folder goes."""
    with running_make_run() as run:
        run.wait_for("Press Ctrl-C to stop.")
        procs, folder = run.children_and_redis_folder()
        os.killpg(run.process.pid, signal.SIGINT)  # what the terminal does
        assert run.process.wait(timeout=60) == 0, run.output[-3000:]
        assert_nothing_left(procs, folder)
    worker_log = (ROOT / ".run" / "worker.log").read_text()
    for symptom in ("could not connect to Redis", "intake_unavailable", "worker_lost_redis",
                    "worker_waiting_for_redis",
                    "worker_heartbeat_failed"):
        assert symptom not in worker_log


@pytest.mark.slow
def test_make_dev_runs_the_procfile_and_plays_a_call_without_the_venv_on_path() -> None:
    """make dev runs the Procfile under honcho though PATH lacks the venv; a call played with
    devtools.play comes out as an alert; SIGTERM then leaves nothing behind."""
    venv_bin = Path(sys.executable).parent
    env = demo_env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if p and Path(p) != venv_bin)
    with running_make_run("--procfile", env=env) as run:
        run.wait_for("Press Ctrl-C to stop.")
        (hint,) = [line for line in run.output.splitlines() if "-m devtools.play" in line]
        # "sdk-error --url URL --simulator URL": honcho may run another process's line on
        # after it, so only those five words are the hint's.
        args = hint.split("-m devtools.play", 1)[1].split()[:5]
        played = subprocess.run([sys.executable, "-m", "devtools.play", *args], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=60)
        assert played.returncode == 0, played.stderr
        assert played.stdout.startswith("CA")
        run.wait_for("── Slack message (200)")
        procs, folder = run.children_and_redis_folder()
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=60) == 0, run.output[-3000:]
        assert_nothing_left(procs, folder)


def test_dot_env_is_ignored_by_git() -> None:
    """A local .env (honcho's settings, often credentials) never gets committed."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run([git, "check-ignore", "--quiet", ".env"], cwd=ROOT, timeout=30)
    assert result.returncode == 0
