"""The Procfile as Heroku runs it (honcho): a signed callback becomes a delivered alert,
and one /metrics scrape shows the call's whole journey, worker included."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import Process
from devtools.redis_server import RedisServer, free_port
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.sender import play_call
from devtools.simulator.server import SimulatorServer
from devtools.standins import WebhookReceiver


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(base + "/metrics", timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.slow
def test_procfile_processes_deliver_and_count(simulator: SimulatorServer) -> None:
    """The Procfile's release check passes; honcho starts web and worker from the Procfile;
    the alert arrives; /metrics counts it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # A Redis of its own: other tests' apps flush their counters into the shared one.
    with WebhookReceiver(WEBHOOK_SECRET) as receiver, RedisServer() as redis_server:
        env = {
            "REDIS_URL": redis_server.url, "TWILIO_ACCOUNT_SID": simulator.account_sid,
            "TWILIO_AUTH_TOKEN": simulator.auth_token,
            "TWILIO_INSIGHTS_BASE_URL": simulator.url, "PUBLIC_BASE_URL": base,
            "ANALYSIS_DELAY_SECONDS": "1", "ALERT_WEBHOOK_URLS": receiver.url,
            "ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET, "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        # release (Heroku's check before a deploy) exits at once; honcho would then stop all.
        # Run as Heroku does before a deploy: callwatch config check, from the venv on PATH.
        release = subprocess.run(shlex.split(procfile_release()), env={**os.environ, **env},
                                 capture_output=True, text=True, timeout=30, check=False)
        assert release.returncode == 0, release.stdout + release.stderr
        assert "configuration is valid" in release.stdout
        honcho = Process([sys.executable, "-m", "honcho", "start", "--port", str(port),
                          "--no-colour", "web", "worker"], env).start()
        try:
            honcho.wait_for(lambda: _ready(base), timeout=30)
            sid = play_call(simulator.url, base, simulator.account_sid, simulator.auth_token,
                            "sdk-error")
            honcho.wait_for(lambda: len(receiver.accepted()) == 1, timeout=60)
            assert receiver.accepted()[0].body["data"]["call"]["call_sid"] == sid
            # Each gunicorn worker flushes its own callback counters every few seconds.
            deadline = time.monotonic() + 20
            while True:
                samples = scrape(base)
                if (value(samples, "callwatch_callbacks_total", outcome="accepted", reason="") >= 1
                        and value(samples, "callwatch_callbacks_total", outcome="ignored",
                                  reason="") >= 3):
                    break
                assert time.monotonic() < deadline, "web's callback counters never reached Redis"
                time.sleep(0.5)
        finally:
            honcho.close()
    assert value(samples, "callwatch_callbacks_total", outcome="accepted", reason="") == 1
    assert value(samples, "callwatch_callbacks_total", outcome="ignored", reason="") == 3
    assert value(samples, "callwatch_analyses_total", outcome="alert") == 1
    alerts = [(dict(labels), n) for (name, labels), n in samples.items()
              if name == "callwatch_alerts_total" and n]
    assert [(labels["severity"], labels["route"], n) for labels, n in alerts] == [
        ("error", "default", 1)]
    assert value(samples, "callwatch_insights_requests_total", status="200") >= 1
    assert value(samples, "callwatch_insights_events_fetched_total") > 0
    # Every sink x outcome is exported (at 0 until counted): one delivery, delivered.
    counted = {labels: n for (name, labels), n in samples.items()
               if name == "callwatch_deliveries_total" and n}
    ((sink, outcome),) = [(dict(labels)["sink"], dict(labels)["outcome"]) for labels in counted]
    assert outcome == "delivered" and list(counted.values()) == [1]
    assert value(samples, "callwatch_delivery_duration_seconds_count", sink=sink) == 1
    assert value(samples, "callwatch_queue_jobs", queue="analysis", state="queued") == 0
    assert value(samples, "callwatch_metrics_redis_up") == 1


def procfile_release() -> str:
    lines = (Path(__file__).resolve().parents[2] / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())["release"]


def _ready(base: str) -> bool:
    try:
        return requests.get(base + "/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
