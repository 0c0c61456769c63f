"""PagerDuty, Teams and email sinks against real servers on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis as redis_lib
import requests

from devtools.pagerduty_standin import PagerDutyStandIn
from devtools.sample_alerts import sample_alert
from devtools.smtp_standin import SmtpStandIn
from devtools.teams_standin import TeamsStandIn
from service.analysis.alert import Issue
from service.decisions import Again, Done
from service.delivery.ledger import DeliveryLedger
from service.delivery.sinks.email import EmailSink, SmtpServer
from service.delivery.sinks.pagerduty import PagerDutySink
from service.delivery.sinks.teams import TeamsSink
from service.delivery.step import DeliveryRequest, deliver_step
from service.errors import DeliveryRejected, DeliveryRetryable
from service.http_session import http_session

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with http_session({}) as s:
        yield s


def _pd(server: PagerDutyStandIn, session: requests.Session) -> PagerDutySink:
    return PagerDutySink(ROUTING_KEY, name="oncall", url=server.url, session=session)


def test_pagerduty_trigger_carries_the_alert(pagerduty: PagerDutyStandIn,
                                             session: requests.Session) -> None:
    """One trigger with dedup_key = alert id, severity, source, CallSid component and issues."""
    alert = sample_alert()
    _pd(pagerduty, session).send(alert)
    [event] = pagerduty.accepted()
    body = event.body
    assert body["routing_key"] == ROUTING_KEY and body["event_action"] == "trigger"
    assert body["dedup_key"] == alert.alert_id
    payload = body["payload"]
    assert payload["severity"] == "error" and payload["source"] == "callwatch"
    assert payload["component"] == alert.call.call_sid
    assert alert.call.call_sid in payload["summary"]
    keys = [issue["key"] for issue in payload["custom_details"]["issues"]]
    assert keys == [issue.key for issue in alert.issues]


def test_pagerduty_warning_severity(pagerduty: PagerDutyStandIn, session: requests.Session) -> None:
    """A warning alert is a PagerDuty warning."""
    alert = sample_alert(issues=3)
    _pd(pagerduty, session).send(replace(alert, issues=alert.issues[1:]))
    assert pagerduty.accepted()[0].body["payload"]["severity"] == "warning"


def test_pagerduty_429_retry_after_is_honoured(pagerduty: PagerDutyStandIn, redis: redis_lib.Redis,
                                               session: requests.Session) -> None:
    """A 429 with Retry-After schedules the retry after that wait; the retry is delivered."""
    pagerduty.script([(429, '{"status":"throttle event"}', {"Retry-After": "7"})])
    alert = sample_alert()
    request = DeliveryRequest("oncall", alert.to_envelope())
    ledger = DeliveryLedger(redis)
    sink = _pd(pagerduty, session)
    decision = deliver_step(request, sink=sink, ledger=ledger, pace=None, retry_s=(1, 1))
    assert isinstance(decision, Again) and decision.after_s == 7
    again = deliver_step(replace(request, **decision.state), sink=sink, ledger=ledger, pace=None,
                         retry_s=(1, 1))
    assert isinstance(again, Done)
    assert pagerduty.triggers() == {alert.alert_id: 1}


def test_pagerduty_repeat_sends_one_trigger(pagerduty: PagerDutyStandIn, redis: redis_lib.Redis,
                                            session: requests.Session) -> None:
    """The same alert delivered twice through the ledger sends one trigger per dedup_key."""
    alert, ledger, sink = sample_alert(), DeliveryLedger(redis), _pd(pagerduty, session)
    for _ in range(2):
        deliver_step(DeliveryRequest("oncall", alert.to_envelope()), sink=sink, ledger=ledger,
                     pace=None, retry_s=(1,))
    assert pagerduty.triggers() == {alert.alert_id: 1}
    assert len(pagerduty.events) == 1


def test_pagerduty_400_is_permanent_with_its_message(pagerduty: PagerDutyStandIn,
                                                     session: requests.Session) -> None:
    """An invalid event is refused for good, with PagerDuty's own message and errors."""
    pagerduty.script([(400, '{"status":"invalid event","message":"Event object is invalid",'
                            '"errors":["\'payload.summary\' is missing or blank"]}', {})])
    with pytest.raises(DeliveryRejected) as caught:
        _pd(pagerduty, session).send(sample_alert())
    assert "Event object is invalid" in str(caught.value) and "payload.summary" in str(caught.value)
    assert ROUTING_KEY not in str(caught.value)


def test_pagerduty_5xx_is_retryable(pagerduty: PagerDutyStandIn, session: requests.Session) -> None:
    """A 502 from PagerDuty is retried."""
    pagerduty.script([(502, "bad gateway", {})])
    with pytest.raises(DeliveryRetryable):
        _pd(pagerduty, session).send(sample_alert())


def test_pagerduty_redirect_is_not_followed(pagerduty: PagerDutyStandIn,
                                            session: requests.Session) -> None:
    """A redirect is refused, not followed."""
    pagerduty.script([(302, "", {"Location": "http://127.0.0.1:1/elsewhere"})])
    with pytest.raises(DeliveryRejected, match="redirect"):
        _pd(pagerduty, session).send(sample_alert())
    assert len(pagerduty.events) == 1


def test_teams_card_carries_call_issues_and_client(teams: TeamsStandIn,
                                                   session: requests.Session) -> None:
    """One Adaptive Card naming the call, every issue and the client's SDK and device."""
    alert = sample_alert()
    TeamsSink(teams.url, name="teams", session=session).send(alert)
    [post] = teams.accepted()
    text = post.text()
    assert alert.call.call_sid in text
    assert all(issue.key in text for issue in alert.issues)
    assert "twilio-voice-js 2.18.4" in text and "Apple MacBookPro18,1" in text


def test_teams_card_stays_within_the_size_limit(teams: TeamsStandIn,
                                                session: requests.Session) -> None:
    """An alert with many long issues still fits one card, with an 'and N more' line."""
    alert = sample_alert(issues=2, description="x " * 300)
    many = tuple(replace(alert.issues[1], key=f"sdk_edge/warning/{n}") for n in range(200))
    TeamsSink(teams.url, name="teams", session=session).send(replace(alert, issues=many))
    [post] = teams.accepted()
    assert post.size <= 28 * 1024
    assert "more issues" in post.text()


def test_teams_429_is_retried_after_retry_after(teams: TeamsStandIn,
                                                session: requests.Session) -> None:
    """A 429 from Teams is retryable with its Retry-After."""
    teams.script([(429, "", {"Retry-After": "3"})])
    with pytest.raises(DeliveryRetryable) as caught:
        TeamsSink(teams.url, name="teams", session=session).send(sample_alert())
    assert caught.value.retry_after == 3
    assert "sig=" not in str(caught.value)


def test_teams_400_is_permanent(teams: TeamsStandIn, session: requests.Session) -> None:
    """A 400 from the workflow is refused for good."""
    teams.script([(400, '{"error":{"code":"BadRequest","message":"no"}}', {})])
    with pytest.raises(DeliveryRejected):
        TeamsSink(teams.url, name="teams", session=session).send(sample_alert())


def _email(server: SmtpStandIn, to: tuple[str, ...] = ("voice-ops@example.com",)) -> EmailSink:
    return EmailSink(SmtpServer.from_url(server.url), "callwatch@example.com", to, name="ops-mail")


def test_email_has_text_and_html_with_call_issues_and_client(smtp: SmtpStandIn) -> None:
    """One message with plain-text and HTML parts naming the call, issues and client."""
    alert = sample_alert()
    _email(smtp).send(alert)
    [mail] = smtp.accepted()
    assert mail.rcpt_tos == ("voice-ops@example.com",)
    assert mail.message["Message-ID"] == f"<{alert.alert_id}@example.com>"
    for subtype in ("plain", "html"):
        body = mail.part(subtype)
        assert alert.call.call_sid in body
        assert all(issue.key in body for issue in alert.issues)
        assert "twilio-voice-js" in body and "MacBookPro18,1" in body


def test_email_4xx_is_retried_5xx_is_permanent(smtp: SmtpStandIn) -> None:
    """A 451 reply is retryable; a 554 reply is refused for good."""
    smtp.script(["451 4.3.0 Try again later", "554 5.7.1 Rejected"])
    with pytest.raises(DeliveryRetryable) as retry:
        _email(smtp).send(sample_alert())
    assert retry.value.status == 451
    with pytest.raises(DeliveryRejected) as rejected:
        _email(smtp).send(sample_alert())
    assert rejected.value.status == 554


def test_email_server_down_is_retryable() -> None:
    """A server that cannot be reached is retried later, and the password is never shown."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = EmailSink(SmtpServer.from_url(f"smtp://user:s3cret-pw@127.0.0.1:{port}"),
                     "callwatch@example.com", ["a@example.com"], name="ops-mail", timeout=2)
    with pytest.raises(DeliveryRetryable) as caught:
        sink.send(sample_alert())
    assert "s3cret-pw" not in str(caught.value) and "s3cret-pw" not in repr(sink)


def test_email_repeat_through_the_ledger_sends_one_message(smtp: SmtpStandIn,
                                                          redis: redis_lib.Redis) -> None:
    """The same alert delivered twice through the ledger is one email."""
    alert, ledger, sink = sample_alert(), DeliveryLedger(redis), _email(smtp)
    for _ in range(2):
        deliver_step(DeliveryRequest("ops-mail", alert.to_envelope()), sink=sink, ledger=ledger,
                     pace=None, retry_s=(1,))
    assert len(smtp.mails) == 1


def test_issue_model_is_what_the_renderers_read() -> None:
    """The renderers read only the alert's public fields (an Issue built by hand renders)."""
    from service.delivery.sinks.email import email_text
    from service.delivery.sinks.pagerduty import pagerduty_event
    from service.delivery.sinks.teams import teams_message

    issue = Issue(key="call/failed", edge=None, group=None, name=None, level="ERROR",
                  severity="error", count=1)
    alert = replace(sample_alert(with_client=False), issues=(issue,))
    assert "call/failed" in email_text(alert)
    assert pagerduty_event(alert, "k")["payload"]["class"] == "call/failed"
    assert teams_message(alert)["attachments"][0]["content"]["type"] == "AdaptiveCard"


def test_email_slow_server_is_cut_off_at_the_deadline(smtp: SmtpStandIn) -> None:
    """A server that holds its answer past the send's deadline is left, and the send retried."""
    smtp.hold_s = 3
    sink = EmailSink(SmtpServer.from_url(smtp.url), "callwatch@example.com", ["a@example.com"],
                     name="ops-mail", timeout=5, deadline_s=1)
    with pytest.raises(DeliveryRetryable):
        sink.send(sample_alert())


def test_incident_events_reach_pagerduty_teams_and_email(
        pagerduty: PagerDutyStandIn, teams: TeamsStandIn, smtp: SmtpStandIn,
        session: requests.Session) -> None:
    """An incident opens, updates and resolves: PagerDuty triggers then resolves on the
    incident id, Teams gets one card per event, email one message per event with its own id."""
    from tests.unit.test_incident_messages import event

    events = [event("opened"), event("updated"), event("resolved")]
    for sink in (_pd(pagerduty, session), TeamsSink(teams.url, name="teams", session=session),
                 _email(smtp)):
        for incident_event in events:
            sink.send_incident(incident_event)
    pages = pagerduty.accepted()
    assert [p.action for p in pages] == ["trigger", "trigger", "resolve"]
    assert {p.dedup_key for p in pages} == {events[0].incident_id}
    cards = teams.accepted()
    assert len(cards) == 3 and "Incident resolved" in str(cards[2].body)
    mails = smtp.accepted()
    assert len(mails) == 3
    assert len({m.message["Message-ID"] for m in mails}) == 3
    assert all(events[0].incident_id in m.part("plain") and m.part("html") for m in mails)
