"""The routing file: what it accepts, and the key path each mistake names."""

from __future__ import annotations

import pytest

from service.delivery.incidents.policy import RatioPolicy, StormPolicy
from service.errors import ConfigError
from service.routing_file.load import Configuration
from service.routing_file.parse import parse_config
from service.settings import Settings

ENV = {"PD_KEY": "0123456789abcdef0123456789abcdef", "SLACK_OPS": "https://hooks.slack.com/services/T/B/x",
       "SMTP_URL": "smtp://mail.example.com:587", "ALERT_EMAIL_FROM": "callwatch@example.com",
       "CRM_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"}
CONTRACT = """
sinks:
  voice-ops: {type: slack, url: "${SLACK_OPS}"}
  oncall:    {type: pagerduty, routing_key: "${PD_KEY}"}
  teams:     {type: teams, url: "https://example.webhook.office.com/workflows/x?sig=abc"}
  ops-mail:  {type: email, to: [voice-ops@example.com]}
  crm:       {type: webhook, url: "https://crm.example.com/hooks/callwatch", secret: "${CRM_SECRET}"}
routes:
  - match: {severity: error}
    sinks: [oncall, voice-ops]
    continue: true
  - match: {error_code: [31401, 31402]}
    sinks: []
  - match: {issue: "sdk_edge/network-quality-warning*", sdk_type: twilio-voice-js}
    sinks: [voice-ops]
default: [crm]
"""


def error_of(text: str, env: dict[str, str] | None = None, plain: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {**ENV, **(env or {})}, plain_sinks=plain)
    return caught.value.message


def test_contract_example_parses_with_secrets_from_the_environment() -> None:
    """The contract's example file parses; ${VAR} values come from the environment."""
    config = parse_config(CONTRACT, ENV)
    sinks = {spec.name: spec for spec in config.sinks}
    assert sinks["oncall"].options["routing_key"] == ENV["PD_KEY"]
    assert sinks["voice-ops"].options["url"] == ENV["SLACK_OPS"]
    assert [r.sinks for r in config.routes] == [("oncall", "voice-ops"), (), ("voice-ops",)]
    assert config.routes[0].continue_ and not config.routes[1].continue_
    assert config.routes[1].match.conditions == (("error_code", (31401, 31402)),)
    assert config.default == ("crm",)


@pytest.mark.parametrize(("text", "path"), [
    ("routes:\n  - {match: {severity: error}, sinks: []}\n  - {match: {colour: red}, sinks: []}\n",
     "routes[1].match.colour"),
    ("routes:\n  - {match: {issue: 'sdk_edge/[abc'}, sinks: []}\n", "routes[0].match.issue"),
    ("routes:\n  - {match: {from: ''}, sinks: []}\n", "routes[0].match.from"),
    ("routes:\n  - {match: {severity: fatal}, sinks: []}\n", "routes[0].match.severity"),
    ("routes:\n  - {match: {error_code: abc}, sinks: []}\n", "routes[0].match.error_code"),
    ("routes:\n  - {match: {severity: error}, sinks: [pager]}\n", "routes[0].sinks[0]"),
    ("routes:\n  - {match: {severity: error}}\n", "routes[0].sinks"),
    ("routes:\n  - {match: {severity: error}, sinks: [], colour: red}\n", "routes[0].colour"),
    ("default: [nowhere]\n", "default[0]"),
    ("sinks:\n  Ops: {type: slack, url: 'https://hooks.slack.com/x'}\n", "sinks.Ops"),
    ("sinks:\n  ops: {type: fax}\n", "sinks.ops.type"),
    ("sinks:\n  ops: {type: pagerduty}\n", "sinks.ops.routing_key"),
    ("sinks:\n  ops: {type: webhook, url: 'https://x.example.com'}\n", "sinks.ops.secret"),
    ("sinks:\n  ops: {type: slack, url: 'http://hooks.example.com/x'}\n", "sinks.ops.url"),
    ("sinks:\n  ops: {type: slack, url: 'https://x', channel: '#a'}\n", "sinks.ops.channel"),
    ("sinks:\n  ops: {type: email, to: [not-an-address]}\n", "sinks.ops.to[0]"),
    ("sinks:\n  ops: {type: pagerduty, routing_key: '${NOT_SET_ANYWHERE}'}\n", "sinks.ops.routing_key"),
    ("sinks:\n  ops: {type: log}\n  ops: {type: log}\n", "sinks.ops"),
    ("storm: {calls: 0}\n", "storm.calls"),
    ("storm: {group_by: [colour]}\n", "storm.group_by[0]"),
    ("ratio: {percent: 200}\n", "ratio.percent"),
    ("ratio: {window_s: 7200}\n", "ratio.window_s"),
    ("routes:\n  - {match: {}, sinks: [], storm: {within: 3}}\n", "routes[0].storm.within"),
    ("colour: red\n", "colour"),
])
def test_each_mistake_names_its_key(text: str, path: str) -> None:
    """Every kind of mistake is refused with a message that starts with its key path."""
    assert error_of(text).startswith(path + ":")


def test_unset_variable_is_named() -> None:
    """An unset ${VAR} names the variable, not its (absent) value."""
    assert "${PAGERDUTY_ROUTING_KEY}" in error_of(
        "sinks:\n  oncall: {type: pagerduty, routing_key: '${PAGERDUTY_ROUTING_KEY}'}\n")


def test_email_sink_needs_smtp_settings() -> None:
    """An email sink without SMTP_URL set says so, naming the sink."""
    message = error_of("sinks:\n  mail: {type: email, to: [a@example.com]}\n", {"SMTP_URL": ""})
    assert message.startswith("sinks.mail:") and "SMTP_URL" in message


def test_name_taken_by_a_plain_variable() -> None:
    """A file sink named like a variable's sink (slack) is refused."""
    message = error_of("sinks:\n  slack: {type: log}\n", plain={"slack": "SLACK_WEBHOOK_URL"})
    assert message.startswith("sinks.slack:") and "SLACK_WEBHOOK_URL" in message


def test_routes_may_name_plain_variable_sinks() -> None:
    """Routes may send to slack and webhook-<host> sinks from the plain variables."""
    config = parse_config("routes:\n  - {match: {severity: error}, sinks: [slack]}\n", {},
                          plain_sinks={"slack": "SLACK_WEBHOOK_URL"})
    assert config.routes[0].sinks == ("slack",)


def test_invalid_yaml_names_the_line() -> None:
    """Broken YAML says so with its line."""
    assert "line 2" in error_of("sinks:\n  a: b: c\n")


def test_storm_and_ratio_top_level_defaults_and_overrides() -> None:
    """Top-level storm/ratio apply to every route; a route overrides or turns them off."""
    config = parse_config(
        "storm: {calls: 5}\nratio: {percent: 10}\nroutes:\n"
        "  - {match: {severity: error}, sinks: [], storm: {within_s: 60}}\n"
        "  - {match: {severity: warning}, sinks: [], storm: off, ratio: false}\n", {})
    assert config.storm == StormPolicy(calls=5)
    assert config.routes[0].storm == StormPolicy(calls=5, within_s=60)
    assert config.routes[0].ratio == RatioPolicy(percent=10.0)
    assert config.routes[1].storm is None and config.routes[1].ratio is None


def test_a_ratio_resolves_after_its_own_wait() -> None:
    """``ratio.resolve_after_s`` is a setting of its own (defaults to 600 s)."""
    config = parse_config("ratio: {percent: 8, resolve_after_s: 120}\n", {})
    assert config.ratio == RatioPolicy(percent=8.0, resolve_after_s=120)


def test_storm_off_at_the_top() -> None:
    """``storm: false`` at the top turns storms off for every route."""
    config = parse_config("storm: false\nroutes:\n  - {match: {}, sinks: []}\n", {})
    assert config.storm is None and config.routes[0].storm is None


def test_one_of_the_two_variables_at_most(tmp_path) -> None:
    """CALLWATCH_CONFIG and CALLWATCH_CONFIG_FILE together are refused."""
    path = tmp_path / "callwatch.yaml"
    path.write_text("routes: []\n")
    base = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "token"}
    with pytest.raises(ConfigError) as caught:
        Configuration.from_env({**base, "CALLWATCH_CONFIG": "routes: []", "CALLWATCH_CONFIG_FILE": str(path)})
    assert caught.value.variable == "CALLWATCH_CONFIG_FILE"
    assert Configuration.from_env({**base, "CALLWATCH_CONFIG_FILE": str(path)}).routing is not None
    with pytest.raises(ConfigError, match="cannot read"):
        Configuration.from_env({**base, "CALLWATCH_CONFIG_FILE": str(tmp_path / "missing.yaml")})


def test_settings_stop_on_a_bad_file() -> None:
    """Configuration.from_env (every process's start-up) refuses a bad routing file."""
    env = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "token",
           "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
           "CALLWATCH_CONFIG": "sinks:\n  slack: {type: log}\n"}
    with pytest.raises(ConfigError) as caught:
        Configuration.from_env(env)
    assert caught.value.variable == "CALLWATCH_CONFIG"
    assert caught.value.message.startswith("sinks.slack:")


def test_settings_read_new_variables() -> None:
    """PAGERDUTY_EVENTS_URL, SMTP_URL and ALERT_EMAIL_FROM are read and checked."""
    base = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "token"}
    settings = Settings.from_env(base)
    assert settings.pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"
    assert settings.callwatch_config is None and settings.smtp_url is None
    with pytest.raises(ConfigError, match="SMTP_URL"):
        Settings.from_env({**base, "SMTP_URL": "mail.example.com"})
    with pytest.raises(ConfigError, match="PAGERDUTY_EVENTS_URL"):
        Settings.from_env({**base, "PAGERDUTY_EVENTS_URL": "http://events.example.com/v2/enqueue"})
    assert "pass" not in repr(Settings.from_env({**base, "SMTP_URL": "smtps://u:pass@mail.example.com"}))


def test_variables_work_in_matchers_too() -> None:
    """${VAR} works in any value, e.g. a route matching this deployment's account."""
    config = parse_config("routes:\n  - {match: {account_sid: '${ACCOUNT}'}, sinks: []}\n",
                          {"ACCOUNT": "AC" + "2" * 32})
    assert config.routes[0].match.conditions == (("account_sid", ("AC" + "2" * 32,)),)
    assert error_of("routes:\n  - {match: {to: '${NOPE}'}, sinks: []}\n").startswith(
        "routes[0].match.to:")
