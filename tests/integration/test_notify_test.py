"""``notify test`` against the stand-ins and real Redis: one clearly marked message through
the real delivery path (signed, paced), the receiver's answer reported, failures named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis as redis_lib
import requests

from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.standins import SlackStandIn, WebhookReceiver
from devtools.web_client import make_settings
from service.delivery.notify_test import notify_test
from service.delivery.pace import Pace
from service.delivery.sinks.base import SinkEnv, SinkSpec
from service.delivery.sinks.registry import Sinks


def sinks_for(redis_url: str, session: requests.Session, **specs: dict[str, str]) -> Sinks:
    settings = make_settings(redis_url)
    return Sinks([SinkSpec(name, options.pop("type"), options) for name, options in specs.items()],
                 SinkEnv(settings, session, lambda: datetime.now(UTC)))


def test_slack_gets_one_marked_message_and_its_answer_is_reported(
        redis_server, redis: redis_lib.Redis, slack_receiver: SlackStandIn) -> None:
    """The test reaches Slack once, says TEST and that nothing went wrong, and the result
    names Slack's answer."""
    session = requests.Session()
    sinks = sinks_for(redis_server.url, session, ops={"type": "slack", "url": slack_receiver.url})
    result = notify_test("ops", sink=sinks.get("ops"), redis=redis, session=session)
    assert result.ok and "answered HTTP 200" in result.answer
    [message] = slack_receiver.accepted()
    assert "TEST: callwatch test message for sink ops" in message.payload["text"]
    assert "no call went wrong" in str(message.payload["blocks"])


def test_a_webhook_test_is_signed_like_an_alert(redis_server, redis: redis_lib.Redis,
                                                webhook_receiver: WebhookReceiver) -> None:
    """The receiver verifies the test's Standard Webhooks signature with its own library."""
    session = requests.Session()
    sinks = sinks_for(redis_server.url, session,
                      crm={"type": "webhook", "url": webhook_receiver.url, "secret": WEBHOOK_SECRET})
    result = notify_test("crm", sink=sinks.get("crm"), redis=redis, session=session)
    assert result.ok
    [delivery] = webhook_receiver.accepted()
    assert delivery.body["data"]["issues"][0]["key"] == "callwatch/test"


def test_a_refusal_is_reported_with_the_receivers_reason(
        redis_server, redis: redis_lib.Redis, slack_receiver: SlackStandIn) -> None:
    """Slack's 404 ``no_service`` fails the test and the line says so; a 503 is reported
    after one try, not retried for an hour."""
    session = requests.Session()
    sinks = sinks_for(redis_server.url, session, ops={"type": "slack", "url": slack_receiver.url})
    slack_receiver.script([(404, "no_service"), (503, "busy")])
    refused = notify_test("ops", sink=sinks.get("ops"), redis=redis, session=session)
    assert not refused.ok and "no_service" in refused.answer
    busy = notify_test("ops", sink=sinks.get("ops"), redis=redis, session=session)
    assert not busy.ok and "503" in busy.answer
    assert len(slack_receiver.messages) == 2


def test_the_test_waits_for_the_sinks_turn(redis_server, redis: redis_lib.Redis,
                                            slack_receiver: SlackStandIn) -> None:
    """With Slack's turn just taken by an alert, the test waits for its own (no 429)."""
    session = requests.Session()
    sinks = sinks_for(redis_server.url, session, ops={"type": "slack", "url": slack_receiver.url})
    sink = sinks.get("ops")
    Pace(redis, interval_s=sink.pace_s or 1.0).reserve("ops")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        import time
        time.sleep(seconds)

    result = notify_test("ops", sink=sink, redis=redis, session=session, sleep=sleep)
    assert result.ok and waits
    assert [m.status for m in slack_receiver.messages] == [200]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, redis_server, slack_receiver: SlackStandIn) -> None:
    """The environment a deployment gives ``callwatch``: Twilio, Redis, a Slack webhook."""
    for name, value in {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "token",
                        "REDIS_URL": redis_server.url, "SLACK_WEBHOOK_URL": slack_receiver.url}.items():
        monkeypatch.setenv(name, value)
    for name in ("CALLWATCH_CONFIG", "CALLWATCH_CONFIG_FILE", "ALERT_WEBHOOK_URLS"):
        monkeypatch.delenv(name, raising=False)


def test_cli_prints_the_answer_or_one_line_and_exit_1(
        cli_env: None, redis: redis_lib.Redis, slack_receiver: SlackStandIn,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``callwatch notify test slack`` prints Slack's answer (exit 0); a refusal, or a sink
    that is not configured, is one line on stderr and exit 1."""
    from service.cli import main

    assert main(["notify", "test", "slack"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("notify test slack: delivered:") and "HTTP 200" in out and err == ""
    slack_receiver.script([(410, "channel_is_archived")])
    assert main(["notify", "test", "slack"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "channel_is_archived" in err
    assert main(["notify", "test", "nope"]) == 1
    assert "'nope'" in capsys.readouterr().err
