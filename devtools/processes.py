"""Real callwatch processes for integration tests: start, read their logs, stop or kill."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class Process:
    """A child process whose combined output goes to a file we can read as JSON log lines."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.args = args
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="callwatch-proc-", suffix=".log", delete=False)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        # A new session, so killing the process group also kills RQ's work horses.
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.output.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                lines.append(record)
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line.get("event") == name]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"process exited ({self.proc.returncode}):\n{self.output[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s; output:\n{self.output[-4000:]}")
            time.sleep(0.1)

    def kill_tree(self) -> None:
        """SIGKILL the process and everything it started (a crash, not a shutdown)."""
        if self.proc is None:
            return
        _kill_descendants(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def exit_code_after_sigterm(self, within_s: float) -> int:
        """One SIGTERM to the process (not its group, as a platform signals its main
        process); its exit code, which must come within ``within_s``."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {within_s} s after one SIGTERM:\n"
                                 f"{self.output[-4000:]}") from None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill_tree()

    def close(self) -> None:
        """Stop it and delete its output, or keep it in ``$CALLWATCH_KEEP_LOGS`` (a folder)."""
        self.stop()
        self._log.close()
        keep = os.environ.get("CALLWATCH_KEEP_LOGS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            os.replace(self._log.name, Path(keep) / Path(self._log.name).name)
        else:
            os.unlink(self._log.name)


def _kill_descendants(pid: int) -> None:
    """Kill children that left the process group (RQ's horse starts its own session)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return
    for child in children:
        _kill_descendants(int(child))
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)


def worker(env: Mapping[str, str], *extra: str) -> Process:
    return Process([sys.executable, "-m", "workers.worker", *extra], env)


def settings_env(redis_url: str, **overrides: str) -> dict[str, str]:
    from devtools.web_client import ACCOUNT_SID, AUTH_TOKEN

    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "REDIS_URL": redis_url, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    env.update(overrides)
    return env
