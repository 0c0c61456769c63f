"""``callwatch analyze`` against the Twilio simulator on loopback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from devtools.simulator.defaults import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from devtools.simulator.server import SimulatorServer
from service.cli import main


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """analyze configures logging onto the captured stderr; undo it after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def env(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> SimulatorServer:
    """The environment a developer would set to point callwatch at the simulator."""
    for name in ("TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "ALERT_WEBHOOK_URLS",
                 "ALERT_MIN_LEVEL", "ALERT_IGNORE", "INSIGHTS_EDGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", DEV_ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", DEV_AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_INSIGHTS_BASE_URL", simulator.url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    return simulator


def test_sdk_error_call_is_alerted(env: SimulatorServer,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A call with an SDK error prints its alert and exits 0."""
    sid = env.add_call("sdk-error")
    code = main(["analyze", sid, "--duration", "30"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.startswith("ERROR: A connection error occurred during the call") and \
        f"; 1 error on {sid} (completed, 30 s)" in out.splitlines()[0]
    assert "[error] sdk_edge/connection/error/31005 x1" in out


def test_json_envelope_for_a_warnings_call(env: SimulatorServer,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints only the envelope on stdout, with the account from the settings."""
    sid = env.add_call("warnings-cleared")
    assert main(["analyze", sid, "--json"]) == 0
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["data"]["call"]["account_sid"] == DEV_ACCOUNT_SID
    assert envelope["data"]["severity"] == "warning"
    assert all(issue["cleared"] is True for issue in envelope["data"]["issues"])


def test_clean_call_has_no_alert(env: SimulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    """A clean call prints no alert and exits 0."""
    sid = env.add_call("clean")
    assert main(["analyze", sid]) == 0
    assert capsys.readouterr().out.startswith("no alert (")


def test_advanced_features_off_exits_1(env: SimulatorServer,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Insights refusing access (17007) exits 1 with a message saying what to enable."""
    sid = env.add_call("advanced-features-off")
    assert main(["analyze", sid]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "callwatch: Insights: " in err and "Advanced Features" in err
    assert "Traceback" not in err and DEV_AUTH_TOKEN not in err


def test_events_not_ready_exits_1(env: SimulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    """A 404 from Insights exits 1 and says events usually take up to 90 s."""
    sid = env.add_call("late-events", ready_after_s=3600)
    assert main(["analyze", sid]) == 1
    err = capsys.readouterr().err
    assert sid in err and "within 90 s" in err


SUB_SID = "AC" + "5b" * 16
SUB_TOKEN = "sub-account-token-not-secret-1"


def test_a_sub_accounts_call_is_read_with_its_own_credentials(
        env: SimulatorServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """--account names a TWILIO_ACCOUNTS account: its call is read with that account's SID
    and token, and the alert carries that account."""
    env.add_account(SUB_SID, SUB_TOKEN)
    monkeypatch.setenv("TWILIO_ACCOUNTS", f"{SUB_SID}:{SUB_TOKEN}")
    sid = env.add_call("sdk-error", account_sid=SUB_SID)
    assert main(["analyze", sid, "--account", SUB_SID, "--json"]) == 0
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["data"]["call"]["account_sid"] == SUB_SID
    assert {r["username"] for r in env.api_requests("events")} == {SUB_SID}


def test_an_account_not_watched_is_refused(env: SimulatorServer,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--account with an account neither TWILIO_ACCOUNT_SID nor in TWILIO_ACCOUNTS exits 2
    with one line naming it, before any request."""
    sid = env.add_call("sdk-error")
    assert main(["analyze", sid, "--account", "AC" + "7c" * 16]) == 2
    err = capsys.readouterr().err
    assert "AC" + "7c" * 16 in err and "TWILIO_ACCOUNTS" in err and "Traceback" not in err
    assert env.api_requests("events") == []
