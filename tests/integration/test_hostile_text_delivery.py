"""A hostile caller identity and SDK message, delivered to the Slack, Teams and SMTP
stand-ins: taken by each, and inert in each (no link, mention or extra header)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis as redis_lib
import requests

from devtools.sample_alerts import sample_alert
from devtools.smtp_standin import SmtpStandIn
from devtools.standins import SlackStandIn
from devtools.teams_standin import TeamsStandIn
from service.analysis.alert import Alert
from service.decisions import Done
from service.delivery.ledger import DeliveryLedger
from service.delivery.sinks.base import AlertSink
from service.delivery.sinks.email import EmailSink, SmtpServer
from service.delivery.sinks.slack import SlackSink
from service.delivery.sinks.teams import TeamsSink
from service.delivery.step import DeliveryRequest, deliver_step
from service.http_session import http_session

IDENTITY = "client:eve\r\nBcc: everyone@example.com <!here> [pay](https://evil.example/pay)"
SDK_MESSAGE = "<@U024BE7LH> see <https://evil.example|docs> or call +1 415 555 0123"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with http_session({}) as s:
        yield s


def _alert() -> Alert:
    alert = sample_alert(description=SDK_MESSAGE)
    return replace(alert, call=replace(alert.call, from_=IDENTITY), summary="")


def _deliver(redis: redis_lib.Redis, name: str, sink: AlertSink) -> None:
    decision = deliver_step(DeliveryRequest(name, _alert().to_envelope()), sink=sink,
                            ledger=DeliveryLedger(redis), pace=None, retry_s=(1,))
    assert isinstance(decision, Done) and decision.outcome == "delivered"


def test_slack_gets_no_mention_or_link(slack_receiver: SlackStandIn, redis: redis_lib.Redis,
                                       session: requests.Session) -> None:
    """Slack takes the message; no ``<!here>``, ``<@U…>`` or ``<https://…|…>`` reaches it."""
    _deliver(redis, "slack", SlackSink(slack_receiver.url, session=session))
    [message] = slack_receiver.accepted()
    raw = str(message.payload)
    assert "<!here>" not in raw and "<@U" not in raw and "<https" not in raw
    assert "https://evil" not in raw
    assert "&lt;@U024BE7LH&gt;" in raw


def test_teams_gets_no_markdown_link(teams: TeamsStandIn, redis: redis_lib.Redis,
                                     session: requests.Session) -> None:
    """Teams takes the card; the markdown link and the URL are inert, the number unlinkable,
    and the card reads what the caller typed."""
    _deliver(redis, "teams", TeamsSink(teams.url, name="teams", session=session))
    [post] = teams.accepted()
    raw = post.raw_text()
    assert "](" not in raw and "://" not in raw and "evil.example" not in raw
    assert "415 555" not in raw and "4\u20601\u20605\u2060 5\u20605\u20605" in raw
    assert "[pay](https://evil.example/pay)" in post.text()
    assert "call +1 415 555 0123" in post.text()


def test_email_gets_no_extra_header(smtp: SmtpStandIn, redis: redis_lib.Redis) -> None:
    """The SMTP server takes one message for the configured recipient only; the caller's
    CR/LF stays inside the Subject, and the HTML part shows the text, escaped."""
    sink = EmailSink(SmtpServer.from_url(smtp.url), "callwatch@example.com", ["ops@example.com"],
                     name="mail")
    _deliver(redis, "mail", sink)
    [mail] = smtp.accepted()
    assert mail.rcpt_tos == ("ops@example.com",)
    assert mail.message["Bcc"] is None
    assert "eve Bcc: everyone@example.com" in str(mail.message["Subject"])
    html = mail.part("html")
    assert "<!here>" not in html and "&lt;!here&gt;" in html and "<@U" not in html
