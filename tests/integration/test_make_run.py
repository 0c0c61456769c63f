"""`make run`'s demo: web and worker from the Procfile, the simulator and stand-ins, sample
calls, and every expected alert printed as it arrives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_make_run_plays_sample_calls_and_shows_their_alerts() -> None:
    """The demo ends with every sample call's alert in Slack and at the webhook receiver."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "REDIS_URL", "SLACK_", "ALERT_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-m", "devtools.run", "--once", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "callwatch is up" in out
    assert "all 4 alerts arrived in Slack and at the webhook receiver." in out
    assert out.count("── Slack message (200)") == 4
    assert out.count("(verified, 200)") == 4
    assert "+14155550123" not in (ROOT / ".run" / "worker.log").read_text()
