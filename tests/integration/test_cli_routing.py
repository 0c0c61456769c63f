"""``callwatch silence``, ``config check`` and ``routes test`` against a real Redis."""

from __future__ import annotations

import json

import pytest
import redis as redis_lib

from devtools.sample_alerts import sample_alert
from service.cli import main

CONFIG = """
sinks:
  oncall: {type: pagerduty, routing_key: "${PD_KEY}"}
  crm: {type: webhook, url: "https://crm.example.com/hooks/cw?token=t0ps3cret", secret: "${CRM}"}
routes:
  - match: {severity: error}
    sinks: [oncall]
    continue: true
  - name: js-calls
    match: {sdk_type: twilio-voice-js}
    sinks: [crm]
default: [crm]
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_server, redis: redis_lib.Redis) -> None:
    for name in ("SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URLS", "CALLWATCH_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("PD_KEY", "pdkey-0123456789abcdef0123456789")
    monkeypatch.setenv("CRM", "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
    monkeypatch.setenv("CALLWATCH_CONFIG", CONFIG)


def test_config_check_prints_sinks_masked_and_routes(env: None, capsys) -> None:
    """config check exits 0 and prints sinks (secrets masked) and routes."""
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "oncall: pagerduty" in out and "crm: webhook" in out
    assert "t0ps3cret" not in out and "0123456789abcdef" not in out and "QUJD" not in out
    assert "routes[0]: match severity=error -> oncall (continue)" in out
    assert "js-calls: match sdk_type=twilio-voice-js -> crm" in out
    assert "default -> crm" in out


def test_config_check_fails_naming_the_key(env: None, monkeypatch: pytest.MonkeyPatch,
                                           capsys) -> None:
    """A bad routing file makes config check exit 1 with the key path."""
    monkeypatch.setenv("CALLWATCH_CONFIG", "routes:\n  - {match: {colour: red}, sinks: []}\n")
    assert main(["config", "check"]) == 1
    assert "routes[0].match.colour" in capsys.readouterr().err


def test_silence_add_list_expire(env: None, capsys) -> None:
    """silence add prints an id, list shows it, expire ends it."""
    assert main(["silence", "add", "error_code=31005", "--for", "2h",
                 "--comment", "carrier outage", "--author", "ann"]) == 0
    silence_id = capsys.readouterr().out.strip()
    assert silence_id.startswith("sil_")
    assert main(["silence", "list"]) == 0
    listed = capsys.readouterr().out
    assert silence_id in listed and "error_code=31005" in listed and "carrier outage" in listed
    assert main(["silence", "expire", silence_id]) == 0
    capsys.readouterr()
    assert main(["silence", "list"]) == 0
    assert "no active silences" in capsys.readouterr().out
    assert main(["silence", "expire", silence_id]) == 2


def test_silences_need_only_redis_url(env: None, monkeypatch: pytest.MonkeyPatch,
                                      capsys) -> None:
    """An operator with only REDIS_URL set (no Twilio credentials, no routing file) adds,
    lists and expires a silence."""
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "CALLWATCH_CONFIG"):
        monkeypatch.delenv(name)
    assert main(["silence", "add", "error_code=31005", "--for", "1h", "--comment", "carrier"]) == 0
    silence_id = capsys.readouterr().out.strip()
    assert main(["silence", "list"]) == 0
    assert silence_id in capsys.readouterr().out
    assert main(["silence", "expire", silence_id]) == 0


def test_silence_add_refuses_bad_input(env: None, capsys) -> None:
    """An unknown matcher key or a bad duration is one line and exit 2."""
    assert main(["silence", "add", "colour=red", "--for", "2h", "--comment", "x"]) == 2
    assert "colour" in capsys.readouterr().err
    assert main(["silence", "add", "severity=error", "--for", "soon", "--comment", "x"]) == 2


def test_routes_test_prints_routes_sinks_and_silence(env: None, tmp_path, capsys) -> None:
    """routes test names the matching routes, the sinks, and the silence that would stop it."""
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(sample_alert().to_envelope()))
    assert main(["routes", "test", str(path)]) == 0
    out = capsys.readouterr().out
    assert "routes[0] matched severity=error -> oncall; continue" in out
    assert "js-calls (routes[1])" in out
    assert "sinks: oncall, crm" in out and "silences: none matches" in out
    assert main(["silence", "add", "severity=error", "--for", "1h", "--comment", "quiet"]) == 0
    silence_id = capsys.readouterr().out.strip()
    path.write_text(json.dumps(sample_alert().to_envelope()["data"]))  # its data alone works too
    assert main(["routes", "test", str(path)]) == 0
    assert f"silenced by {silence_id}" in capsys.readouterr().out


def test_routes_test_refuses_a_non_alert(env: None, tmp_path, capsys) -> None:
    """A file that is not an alert is one line and exit 2."""
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    assert main(["routes", "test", str(path)]) == 2
    assert "not a callwatch alert" in capsys.readouterr().err


def test_kubernetes_example_routing_file_checks(env: None, monkeypatch: pytest.MonkeyPatch,
                                                capsys) -> None:
    """k8s/routing/callwatch.yaml passes config check once its variables are set."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "k8s" / "routing" / "callwatch.yaml"
    monkeypatch.delenv("CALLWATCH_CONFIG")
    for name, value in {"CALLWATCH_CONFIG_FILE": str(path),
                        "SLACK_VOICE_OPS_URL": "https://hooks.slack.com/services/T/B/x",
                        "PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef",
                        "TEAMS_WORKFLOW_URL": "https://example.webhook.office.com/w?sig=x",
                        "CRM_WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY",
                        "SMTP_URL": "smtp://mail.example.com:587",
                        "ALERT_EMAIL_FROM": "callwatch@example.com"}.items():
        monkeypatch.setenv(name, value)
    assert main(["config", "check"]) == 0
    assert "ops-mail: email" in capsys.readouterr().out


def test_readme_routing_example_is_valid() -> None:
    """The README's complete routing example parses, with its variables set."""
    from pathlib import Path

    from service.routing_file.parse import parse_config

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Routing, PagerDuty, Teams, email and silences", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    env = {"SLACK_VOICE_OPS_URL": "https://hooks.slack.com/services/T/B/x",
           "PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef",
           "TEAMS_WORKFLOW_URL": "https://example.webhook.office.com/w?sig=x",
           "CRM_WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY",
           "SMTP_URL": "smtp://mail.example.com:587", "ALERT_EMAIL_FROM": "callwatch@example.com"}
    config = parse_config(example, env)
    assert [r.name for r in config.routes][:2] == ["routes[0]", "page-on-errors"]
    assert config.routes[4].storm is None and config.default == ("crm",)
