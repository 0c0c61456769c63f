"""One JSON object per line, always: web and worker over a whole `make run`, and over a
Redis outage (the scheduler's crash included); access lines as fields, without queries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.processes import Process, settings_env, worker
from devtools.redis_server import RedisServer, free_port
from devtools.web_client import callback_params, sign
from service.calls import CALLBACK_PATH
from tests.integration.test_make_run import demo_env

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "workers.wsgi:app"]


def not_json(text: str) -> list[str]:
    """The lines of ``text`` that are not one JSON object each."""
    bad = []
    for line in text.splitlines():
        try:
            if not isinstance(json.loads(line), dict):
                bad.append(line)
        except ValueError:
            bad.append(line)
    return bad


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def access_lines(process: Process) -> list[dict[str, Any]]:
    return [line for line in process.log_lines() if line.get("logger") == "gunicorn.access"]


@pytest.mark.slow
def test_a_redis_outage_logs_only_json_lines() -> None:
    """Redis stopped under a running web and worker: the 503s, the workers waiting, the
    scheduler's crash (its traceback in an ``exception`` field) and the recovery are all
    JSON lines; nothing is printed raw, and access lines carry fields, not the query."""
    with RedisServer() as server:
        env = settings_env(server.url, PUBLIC_BASE_URL="https://callwatch.test")
        port = free_port()
        web = Process(GUNICORN, {**env, "PORT": str(port), "WEB_CONCURRENCY": "1"}).start()
        work = worker(env).start()
        base = f"http://127.0.0.1:{port}"
        try:
            web.wait_for(lambda: _answers(f"{base}/readyz", 200), timeout=30)
            work.wait_for(lambda: bool(work.events("worker_listening")), timeout=30)
            server.stop()
            assert _post_callback(port) == 503
            assert requests.get(f"{base}/readyz?token=query-secret", timeout=5).status_code == 503
            work.wait_for(lambda: any(line.get("logger") == "rq.scheduler"
                                      and line.get("level") == "error"
                                      for line in work.log_lines()), timeout=30)
            server.start()
            listening = len(work.events("worker_listening"))
            work.wait_for(lambda: len(work.events("worker_listening")) > listening, timeout=60)
            web.wait_for(lambda: _answers(f"{base}/readyz", 200), timeout=30)
            assert _post_callback(port) == 204
        finally:
            web.stop()
            work.stop()
        outputs = {"web": web.output, "worker": work.output}
        web.close()
        work.close()
    for name, text in outputs.items():
        assert not_json(text) == [], (name, not_json(text)[:10])
    worker_lines = [json.loads(line) for line in outputs["worker"].splitlines()]
    # One crash per scheduler process: RQ takes each queue's lock apart, so two processes
    # starting together may each hold some (seen under load, before and after 2026-12-07).
    crashes = [line for line in worker_lines
               if line.get("logger") == "rq.scheduler" and line.get("level") == "error"]
    assert crashes
    assert len({crash["event"] for crash in crashes}) == len(crashes)  # each process's once
    for crash in crashes:
        assert crash["event"].startswith("Scheduler [PID ")
        assert crash["exception"].startswith("Traceback (most recent call last):")
        assert "ConnectionError" in crash["exception"]
    accessed = [json.loads(line) for line in outputs["web"].splitlines()
                if '"gunicorn.access"' in line]
    by_path = {(line["method"], line["path"], line["status"]) for line in accessed}
    assert {("POST", CALLBACK_PATH, 503), ("GET", "/readyz", 503), ("POST", CALLBACK_PATH, 204),
            ("GET", "/readyz", 200)} <= by_path
    assert all(isinstance(line["duration_ms"], float) and line["event"] == "http_request"
               for line in accessed)
    assert "query-secret" not in outputs["web"]


@pytest.mark.slow
def test_make_run_logs_only_json_lines() -> None:
    """The whole demo (web, worker, sample calls, alerts) writes only JSON lines; the
    non-terminal callbacks it plays are not logged at INFO."""
    result = subprocess.run(
        [sys.executable, "-m", "devtools.run", "--once", "--port", str(free_port())],
        cwd=ROOT, env=demo_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    web = (ROOT / ".run" / "web.log").read_text()
    worker_log = (ROOT / ".run" / "worker.log").read_text()
    assert not_json(web) == [] and not_json(worker_log) == []
    web_lines = [json.loads(line) for line in web.splitlines()]
    assert any(line.get("event") == "http_request" and line["path"] == CALLBACK_PATH
               for line in web_lines)
    assert not [line for line in web_lines if line.get("event") == "callback_ignored"]
    assert any(line.get("event") == "alert_delivered" for line in map(json.loads,
                                                                      worker_log.splitlines()))


def _answers(url: str, status: int) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == status
    except requests.RequestException:
        return False


def _post_callback(port: int) -> int:
    params = callback_params("CA" + "7" * 32)
    url = f"https://callwatch.test{CALLBACK_PATH}"
    return requests.post(f"http://127.0.0.1:{port}{CALLBACK_PATH}", data=params, timeout=10,
                         headers={"X-Twilio-Signature": sign(url, params)}).status_code
