"""Huge Twilio texts: every receiver still gets a message it accepts, within its limit.

The alerts are the cases that lost pages: 40 issues with long SDK messages (a 12 MB
PagerDuty body before the cap) and a 2 MB ``city``. Each goes through the delivery step
(real Redis ledger) to the PagerDuty, Teams, SMTP and webhook stand-ins on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis as redis_lib
import requests

from devtools.pagerduty_standin import PagerDutyStandIn
from devtools.sample_alerts import WEBHOOK_SECRET, sample_alert
from devtools.smtp_standin import SmtpStandIn
from devtools.standins import SlackStandIn, WebhookReceiver, slack_payload_problem
from devtools.teams_standin import TeamsStandIn
from service.analysis.alert import MAX_TWILIO_TEXT, Alert, Issue
from service.decisions import Done
from service.delivery.ledger import DeliveryLedger
from service.delivery.sinks.base import AlertSink
from service.delivery.sinks.email import EmailSink, SmtpServer, email_message
from service.delivery.sinks.fitting import (
    EMAIL_MAX_BYTES,
    PAGERDUTY_MAX_BYTES,
    TEAMS_MAX_BYTES,
    WEBHOOK_MAX_BYTES,
)
from service.delivery.sinks.pagerduty import PagerDutySink
from service.delivery.sinks.slack import SlackSink
from service.delivery.sinks.teams import TeamsSink
from service.delivery.sinks.webhook import WebhookSink
from service.delivery.step import DeliveryRequest, deliver_step
from service.http_session import http_session
from service.insights.events import ClientInfo

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"
#: 300,000 characters: 40 of them made the 12 MB PagerDuty body.
LONG = "ICE failed: " + "x" * 300_000
#: Four UTF-8 bytes (and 12 bytes of JSON \\u escapes) a character: the worst case per character.
WIDE = "\U0001F4DE" * 5000


def _huge(text: str, *, issues: int = 40, every_field: bool = False) -> Alert:
    """``issues`` issues whose SDK message and description are ``text`` (and, with
    ``every_field``, their names too), a 2 MB city and a 2 MB caller identity."""
    base = sample_alert(issues=issues)
    long_issues = tuple(
        replace(issue, sdk_message=text, description=text,
                **({"group": text, "name": text, "edge": text} if every_field else {}))
        for issue in base.issues)
    return replace(base, issues=long_issues,
                   call=replace(base.call, from_="client:" + "a" * 2_000_000),
                   client=ClientInfo(sdk_type="twilio-voice-js", sdk_version="2.18.4",
                                     city="C" * 2_000_000, country_code="US"),
                   summary="")


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with http_session({}) as s:
        yield s


def _deliver(redis: redis_lib.Redis, name: str, sink: AlertSink, alert: Alert) -> None:
    decision = deliver_step(DeliveryRequest(name, alert.to_envelope()), sink=sink,
                            ledger=DeliveryLedger(redis), pace=None, retry_s=(1,))
    assert isinstance(decision, Done), decision


def test_twilio_texts_are_cut_at_1000_characters_when_the_alert_is_built() -> None:
    """SDK messages, descriptions, the city and the caller's identity keep 1,000 characters,
    the last one an ellipsis; the summary stays within them and keeps the CallSid (the
    identity is shortened in it); short texts are untouched."""
    alert = _huge(LONG)
    assert len(alert.summary) <= MAX_TWILIO_TEXT and alert.call.call_sid in alert.summary
    texts = [alert.call.from_, alert.client.city if alert.client else None]
    texts += [issue.sdk_message for issue in alert.issues] + [i.description for i in alert.issues]
    assert all(t is not None and len(t) == MAX_TWILIO_TEXT and t.endswith("…") for t in texts)
    assert alert.issues[0].sdk_message == LONG[: MAX_TWILIO_TEXT - 1] + "…"
    assert alert.client is not None and alert.client.sdk_type == "twilio-voice-js"
    assert len(json.dumps(alert.to_envelope())) < 200_000
    back = Alert.from_envelope(alert.to_envelope())
    assert back == alert


@pytest.mark.parametrize("text", [LONG, WIDE], ids=["long-ascii", "wide-unicode"])
def test_pagerduty_takes_the_12_mb_case(pagerduty: PagerDutyStandIn, redis: redis_lib.Redis,
                                        session: requests.Session, text: str) -> None:
    """The 40-issue alert is one accepted trigger under 512 KB (its summary ≤ 1024 characters);
    issues that do not fit are counted in ``more_issues``."""
    alert = _huge(text, every_field=True)
    _deliver(redis, "oncall", PagerDutySink(ROUTING_KEY, name="oncall", url=pagerduty.url,
                                            session=session), alert)
    [event] = pagerduty.accepted()
    assert event.size <= PAGERDUTY_MAX_BYTES
    payload = event.body["payload"]
    assert len(payload["summary"]) <= 1024 and len(event.body["dedup_key"]) <= 255
    details = payload["custom_details"]
    assert len(details["issues"]) + details["more_issues"] == 40
    assert details["issues"][0]["key"] == alert.issues[0].key


@pytest.mark.parametrize("text", [LONG, WIDE], ids=["long-ascii", "wide-unicode"])
def test_teams_card_stays_under_28_kb(teams: TeamsStandIn, redis: redis_lib.Redis,
                                      session: requests.Session, text: str) -> None:
    """The card with a 2 MB city and 40 long issues is accepted under 28 KB; when issues do
    not fit, it says how many it leaves out."""
    alert = _huge(text)
    _deliver(redis, "teams", TeamsSink(teams.url, name="teams", session=session), alert)
    [post] = teams.accepted()
    assert post.size <= TEAMS_MAX_BYTES
    shown = post.text()
    listed = sum(1 for issue in alert.issues if f"] {issue.key}" in shown)
    assert 0 < listed <= 40
    assert (f"…and {40 - listed} more issues" in shown) == (listed < 40)
    if text is WIDE:  # 40 descriptions of 4-byte characters cannot all fit
        assert listed < 40


@pytest.mark.parametrize("text", [LONG, WIDE], ids=["long-ascii", "wide-unicode"])
def test_webhook_body_stays_under_256_kb(webhook_receiver: WebhookReceiver, redis: redis_lib.Redis,
                                         session: requests.Session, text: str) -> None:
    """The signed body is under 256 KB, still schema version 1, verified by the receiver;
    the issues left out are counted in ``truncated_issues``."""
    alert = _huge(text, every_field=True)
    sink = WebhookSink(webhook_receiver.url, WEBHOOK_SECRET, name="crm", session=session)
    _deliver(redis, "crm", sink, alert)
    [delivery] = webhook_receiver.accepted()
    assert delivery.verified and len(delivery.raw) <= WEBHOOK_MAX_BYTES
    data = delivery.body["data"]
    assert data["schema_version"] == 1 and data["alert_id"] == alert.alert_id
    assert len(data["issues"]) + data["truncated_issues"] == 40
    if text is WIDE:  # 40 issues of 12-byte escapes cannot all fit
        assert data["truncated_issues"] > 0
    assert data["summary"] == alert.summary  # the summary still counts every issue


@pytest.mark.parametrize("text", [LONG, WIDE], ids=["long-ascii", "wide-unicode"])
def test_email_stays_under_1_mb(smtp: SmtpStandIn, redis: redis_lib.Redis, text: str) -> None:
    """The e-mail for the huge alert is taken by the server and under 1 MB."""
    alert = _huge(text, every_field=True)
    sink = EmailSink(SmtpServer.from_url(smtp.url), "callwatch@example.com", ["ops@example.com"],
                     name="mail")
    _deliver(redis, "mail", sink, alert)
    [mail] = smtp.accepted()
    assert mail.size <= EMAIL_MAX_BYTES
    assert alert.alert_id in mail.part("plain")


def test_email_with_thousands_of_issues_counts_what_it_leaves_out() -> None:
    """An alert read back with 3,000 long issues makes a message under 1 MB that names how
    many it leaves out."""
    base = _huge(WIDE, issues=1, every_field=True)
    many = tuple(replace(base.issues[0], key=f"sdk_edge/warning/w{n}") for n in range(3000))
    alert = replace(base, issues=many)
    message = email_message(alert, "callwatch@example.com", ["ops@example.com"])
    assert len(message.as_bytes()) <= EMAIL_MAX_BYTES
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    content = str(text.get_content())
    listed = content.count("sdk_edge/warning/w")
    assert 0 < listed < 3000 and f"... and {3000 - listed} more issues" in content


def test_a_fitted_alert_keeps_its_errors_first(webhook_receiver: WebhookReceiver,
                                               redis: redis_lib.Redis,
                                               session: requests.Session) -> None:
    """When issues are left out, the first ones (the errors) are kept and the severity stays."""
    alert = _huge(WIDE, every_field=True)
    error = Issue(key="call/failed", edge=None, group="call", name="failed", level="ERROR",
                  severity="error", count=1, description=WIDE)
    alert = replace(alert, issues=(error, *alert.issues[1:]))
    sink = WebhookSink(webhook_receiver.url, WEBHOOK_SECRET, name="crm", session=session)
    _deliver(redis, "crm", sink, alert)
    data = webhook_receiver.accepted()[0].body["data"]
    assert data["issues"][0]["key"] == "call/failed" and data["severity"] == "error"


@pytest.mark.parametrize("text", [LONG, WIDE], ids=["long-ascii", "wide-unicode"])
def test_slack_stays_within_block_kit(slack_receiver: SlackStandIn, redis: redis_lib.Redis,
                                      session: requests.Session, text: str) -> None:
    """The huge alert is one Slack message within Block Kit's limits (50 blocks, 3,000
    characters a section, 150 a header), taken by the stand-in."""
    alert = _huge(text, every_field=True)
    _deliver(redis, "slack", SlackSink(slack_receiver.url, session=session), alert)
    [message] = slack_receiver.accepted()
    assert slack_payload_problem(message.payload) is None
    assert len(message.payload["blocks"]) <= 50
