"""``python -m devtools.play``: one simulated call played against a running callwatch."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis as redis_lib

from devtools import play
from devtools.background_server import BackgroundServer
from devtools.redis_server import RedisServer, free_port
from devtools.simulator.server import SimulatorServer
from service.intake import INTAKE_KEY
from service.settings import Settings
from service.web import create_app


@pytest.fixture
def callwatch(simulator: SimulatorServer, redis: redis_lib.Redis,
              redis_server: RedisServer) -> Iterator[str]:
    """callwatch's web app on a loopback port, configured for the simulator; its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings.from_env({
        "TWILIO_ACCOUNT_SID": simulator.account_sid, "TWILIO_AUTH_TOKEN": simulator.auth_token,
        "TWILIO_INSIGHTS_BASE_URL": simulator.url, "REDIS_URL": redis_server.url,
        "PUBLIC_BASE_URL": base, "LOG_FORMAT": "json"})
    with BackgroundServer(create_app(settings, redis=redis), port=port):
        yield base


def test_play_registers_the_call_and_callwatch_accepts_its_callbacks(
        simulator: SimulatorServer, callwatch: str, redis: redis_lib.Redis,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The call is in the simulator for the worker to fetch, and callwatch scheduled it."""
    assert play.main(["sdk-error", "--url", callwatch, "--simulator", simulator.url]) == 0
    sid = capsys.readouterr().out.splitlines()[-1]  # (the app logs to stdout too)
    assert sid.startswith("CA")
    assert simulator.state.lookup(sid) is not None
    assert redis.zcard(INTAKE_KEY) == 1


def test_play_with_the_wrong_token_says_what_to_check(
        simulator: SimulatorServer, callwatch: str, redis: redis_lib.Redis,
        capsys: pytest.CaptureFixture[str]) -> None:
    """callwatch refuses the signature: exit 1 naming --auth-token; nothing is scheduled."""
    assert play.main(["clean", "--url", callwatch, "--simulator", simulator.url,
                      "--auth-token", "not-the-token"]) == 1
    err = capsys.readouterr().err
    assert "callwatch refused the request (403" in err and "--auth-token" in err
    assert redis.zcard(INTAKE_KEY) == 0


def test_simulator_help_names_the_play_command() -> None:
    """The simulator's --help tells how to play a call against callwatch."""
    result = subprocess.run([sys.executable, "-m", "devtools.simulator", "--help"],
                            capture_output=True, text=True, timeout=30, check=True)
    assert "python -m devtools.play SCENARIO" in " ".join(result.stdout.split())


def test_readme_lists_every_scenario_play_knows() -> None:
    """The README's list of scenarios for devtools.play is the simulator's."""
    from pathlib import Path

    from devtools.simulator.scenarios import SCENARIOS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("**Playing a call.**"):]
    section = section[:section.index("\n\n")]
    assert set(re.findall(r"`([a-z-]+)`", section)) >= set(SCENARIOS)
