"""Settings.from_env: defaults, parsing, and start-up errors that name the variable."""

from __future__ import annotations

import pytest

from service.errors import ConfigError
from service.routing_file.load import Configuration
from service.settings import Settings

BASE = {"TWILIO_ACCOUNT_SID": "AC" + "a" * 32, "TWILIO_AUTH_TOKEN": "tok"}
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_defaults_match_the_documented_table() -> None:
    """With only the required variables, every default is the README's."""
    s = Settings.from_env(BASE)
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.twilio_insights_base_url == "https://insights.twilio.com"
    assert s.analysis_delay_seconds == 90
    assert s.analysis_recheck_seconds == (60, 180, 600)
    assert s.insights_edges == ("sdk_edge",)
    assert s.alert_min_level == "WARNING"
    assert s.delivery_retry_seconds == (5, 30, 120, 600, 1800)
    assert s.twilio_validate_signatures is True
    assert (s.log_level, s.log_format, s.port, s.trusted_proxy_hops) == ("INFO", "json", 8000, 0)
    assert s.insights_auth == (BASE["TWILIO_ACCOUNT_SID"], "tok")


def test_lists_and_api_key_are_parsed() -> None:
    """Comma lists, the API key and the secondary token are read as documented."""
    s = Settings.from_env({**BASE, "INSIGHTS_EDGES": "sdk_edge, client_edge",
                           "ALERT_IGNORE": "audio-level-warning-raised/constant-audio-output-level",
                           "ANALYSIS_RECHECK_SECONDS": "5", "ANALYSIS_DELAY_SECONDS": "0",
                           "TWILIO_API_KEY_SID": "SK1", "TWILIO_API_KEY_SECRET": "sec",
                           "TWILIO_AUTH_TOKEN_SECONDARY": "tok2", "ALERT_MIN_LEVEL": "error",
                           "ALERT_WEBHOOK_URLS": "https://a.example/h, http://127.0.0.1:9/h",
                           "ALERT_WEBHOOK_SECRET": SECRET})
    assert s.insights_edges == ("sdk_edge", "client_edge")
    assert s.alert_ignore == {"audio-level-warning-raised/constant-audio-output-level"}
    assert s.analysis_recheck_seconds == (5,) and s.analysis_delay_seconds == 0
    assert s.insights_auth == ("SK1", "sec")
    assert s.auth_tokens == ("tok", "tok2")
    assert s.alert_min_level == "ERROR"
    assert s.alert_webhook_urls == ("https://a.example/h", "http://127.0.0.1:9/h")


@pytest.mark.parametrize(("env", "variable"), [
    ({"TWILIO_ACCOUNT_SID": ""}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
    ({"ANALYSIS_DELAY_SECONDS": "ninety"}, "ANALYSIS_DELAY_SECONDS"),
    ({"ANALYSIS_DELAY_SECONDS": "-1"}, "ANALYSIS_DELAY_SECONDS"),
    ({"ANALYSIS_RECHECK_SECONDS": "60,x"}, "ANALYSIS_RECHECK_SECONDS"),
    ({"DELIVERY_RETRY_SECONDS": "5,,x"}, "DELIVERY_RETRY_SECONDS"),
    ({"INSIGHTS_EDGES": "moon_edge"}, "INSIGHTS_EDGES"),
    ({"ALERT_MIN_LEVEL": "INFO"}, "ALERT_MIN_LEVEL"),
    ({"ALERT_IGNORE": "high-rtt"}, "ALERT_IGNORE"),
    ({"ALERT_WEBHOOK_URLS": "https://a.example/h"}, "ALERT_WEBHOOK_SECRET"),
    ({"ALERT_WEBHOOK_URLS": "http://a.example/h", "ALERT_WEBHOOK_SECRET": SECRET},
     "ALERT_WEBHOOK_URLS"),
    ({"ALERT_WEBHOOK_SECRET": "plain"}, "ALERT_WEBHOOK_SECRET"),
    ({"SLACK_WEBHOOK_URL": "hooks.slack.com/x"}, "SLACK_WEBHOOK_URL"),
    ({"TWILIO_API_KEY_SID": "SK1"}, "TWILIO_API_KEY_SECRET"),
    ({"TWILIO_VALIDATE_SIGNATURES": "maybe"}, "TWILIO_VALIDATE_SIGNATURES"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ({"PORT": "70000"}, "PORT"),
    ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
    ({"PUBLIC_BASE_URL": "alerts.example.com"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://alerts.example.com:99999"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://alerts.example.com:abc"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://alerts.example.com/?x=1"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://alerts.example.com/#top"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://user:pw@alerts.example.com"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://alerts.example.com/twilio/status-callback"}, "PUBLIC_BASE_URL"),
    ({"ANALYSIS_DELAY_SECONDS": "3601"}, "ANALYSIS_DELAY_SECONDS"),
    ({"ANALYSIS_DELAY_SECONDS": "99999999999999999999"}, "ANALYSIS_DELAY_SECONDS"),
])
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    """Each malformed or missing value stops start-up with ConfigError naming its variable."""
    with pytest.raises(ConfigError) as caught:
        Configuration.from_env({**BASE, **env})
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_secrets_stay_out_of_repr() -> None:
    """Printing or logging Settings never shows a token, secret or webhook URL."""
    s = Settings.from_env({**BASE, "TWILIO_AUTH_TOKEN": "supersecrettoken",
                           "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/sekrit",
                           "ALERT_WEBHOOK_SECRET": SECRET,
                           "REDIS_URL": "redis://:hunter2@localhost:6379/0"})
    text = repr(s)
    for secret in ("supersecrettoken", "sekrit", SECRET, "hunter2"):
        assert secret not in text


def test_redis_tls_verification_can_be_relaxed_for_self_signed_servers() -> None:
    """REDIS_TLS_VERIFY=false turns off certificate checks for rediss:// only."""
    strict = Settings.from_env({**BASE, "REDIS_URL": "rediss://h.example:6380/0"})
    relaxed = Settings.from_env({**BASE, "REDIS_URL": "rediss://h.example:6380/0",
                                 "REDIS_TLS_VERIFY": "false"})
    strict_kwargs = strict.redis().connection_pool.connection_kwargs
    relaxed_kwargs = relaxed.redis().connection_pool.connection_kwargs
    assert strict_kwargs.get("ssl_cert_reqs", "required") == "required"
    assert relaxed_kwargs["ssl_cert_reqs"] == "none"


def test_redis_alone_is_read_and_checked_as_settings_read_it() -> None:
    """A command that needs only Redis (incidents list) reads REDIS_URL and REDIS_TLS_VERIFY
    without the Twilio variables, with the same checks and TLS relaxation."""
    from service.settings import redis_from_env

    relaxed = redis_from_env({"REDIS_URL": "rediss://h.example:6380/0", "REDIS_TLS_VERIFY": "false"})
    assert relaxed.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"
    with pytest.raises(ConfigError) as caught:
        redis_from_env({"REDIS_URL": "http://h.example:6379/0"})
    assert caught.value.variable == "REDIS_URL"
    with pytest.raises(ConfigError) as caught:
        redis_from_env({"REDIS_TLS_VERIFY": "maybe"})
    assert caught.value.variable == "REDIS_TLS_VERIFY"


@pytest.mark.parametrize(("value", "expected"), [
    ("https://alerts.example.com/", "https://alerts.example.com"),
    ("https://alerts.example.com:8443", "https://alerts.example.com:8443"),
    ("https://example.com/callwatch/", "https://example.com/callwatch"),  # behind a path prefix
])
def test_public_base_url_forms_that_are_kept(value: str, expected: str) -> None:
    """Scheme, host, port and a path prefix are what the signed URL starts with."""
    assert Settings.from_env({**BASE, "PUBLIC_BASE_URL": value}).public_base_url == expected


def test_the_longest_delay_leaves_the_call_remembered() -> None:
    """The longest allowed delay is well inside the intake's memory of a call, so a call is
    never forgotten before its analysis falls due."""
    from service.intake import CALL_TTL_S
    from service.settings import MAX_ANALYSIS_DELAY_S

    settings = Settings.from_env({**BASE, "ANALYSIS_DELAY_SECONDS": str(MAX_ANALYSIS_DELAY_S)})
    assert settings.analysis_delay_seconds == MAX_ANALYSIS_DELAY_S
    assert MAX_ANALYSIS_DELAY_S * 4 < CALL_TTL_S
