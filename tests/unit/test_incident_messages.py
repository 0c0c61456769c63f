"""Incident events as each receiver shows them, and the storm/ratio settings' checks."""

from __future__ import annotations

import json

from standardwebhooks.webhooks import Webhook

from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.standins import slack_payload_problem
from service.cli.incidents import age, format_table
from service.delivery.incidents.events import IncidentEvent, build_event, message_id
from service.delivery.incidents.store import Snapshot
from service.delivery.sinks.email import email_incident
from service.delivery.sinks.pagerduty import pagerduty_incident_event
from service.delivery.sinks.slack_blocks import slack_incident_message
from service.delivery.sinks.teams import teams_incident_card
from service.delivery.sinks.webhook import signed_event_request, signing_key

T0 = 1_800_000_000.0
SIDS = [f"CA{n:032x}" for n in range(20)]


def snapshot(*, status: str = "open", calls: int = 57, codes: int = 8) -> Snapshot:
    fields = {"id": "inc_abcdefghijklmnopqrst", "route": "voice-ops", "trigger": "storm",
              "group": json.dumps({"issue": "sdk_edge/connection/error/31005", "country_code": "US"}),
              "status": status, "opened_at": repr(T0), "updated_at": repr(T0 + 300),
              "calls": str(calls)}
    if status == "resolved":
        fields["resolved_at"] = repr(T0 + 900)
    for n in range(codes):
        fields[f"c:error_code:{31000 + n}"] = str(codes - n)
    fields["c:sdk:twilio-voice-js 2.18.4"] = str(calls)
    fields["c:country:US"] = str(calls)
    return Snapshot(fields, tuple(SIDS), 12)


def event(kind: str = "opened", **options: object) -> IncidentEvent:
    from datetime import UTC, datetime
    status = "resolved" if kind == "resolved" else "open"
    return build_event(kind, {"opened": 1, "updated": 2, "resolved": 3}[kind],
                       snapshot(status=status, **options),  # type: ignore[arg-type]
                       datetime.fromtimestamp(T0 + 900, UTC))


def test_slack_message_is_valid_and_shows_ten_sample_calls() -> None:
    """Slack gets a Block Kit message within its limits: the group in plain words, the count,
    the span, top codes, 10 CallSids and how to see the rest; the text names no CallSid."""
    body = slack_incident_message(event("updated"))
    assert slack_payload_problem(body) is None
    text = json.dumps(body, ensure_ascii=False)
    assert "issue sdk_edge/connection/error/31005, country code US" in text
    assert sum(sid in text for sid in SIDS) == 10
    assert "callwatch incidents list" in text and "31000 (8)" in text and "and 3 more" in text
    assert "CA" not in body["text"]
    assert "Incident updated: country US: 57 calls so far with 31005 (route voice-ops)" in body["text"]


def test_pagerduty_triggers_then_resolves_on_the_incident_id() -> None:
    """opened and updated trigger, resolved resolves, all on dedup_key = incident id."""
    opened, updated, resolved = (pagerduty_incident_event(event(k), "R" * 32)
                                 for k in ("opened", "updated", "resolved"))
    assert [e["event_action"] for e in (opened, updated, resolved)] == ["trigger", "trigger", "resolve"]
    assert {e["dedup_key"] for e in (opened, updated, resolved)} == {"inc_abcdefghijklmnopqrst"}
    assert len(opened["payload"]["summary"]) <= 1024 and "payload" not in resolved


def test_teams_card_and_email_carry_the_same_content() -> None:
    """Teams gets one Adaptive Card; e-mail a subject, text and HTML; both name the group and
    the sample calls."""
    card = teams_incident_card(event("resolved"))
    assert card["type"] == "message" and len(card["attachments"]) == 1
    content = json.dumps(card)
    subject, text, html = email_incident(event("resolved"))
    for rendered in (content, text, html):
        assert SIDS[0] in rendered and SIDS[10] not in rendered and "31005" in rendered
    assert subject.startswith("[callwatch] Incident resolved: country US: 57 calls with 31005")


def test_webhook_event_is_signed_with_the_incident_webhook_id() -> None:
    """The webhook body is the event envelope, signed per Standard Webhooks under
    ``<incident_id>:<sequence>``."""
    from datetime import UTC, datetime
    sent = event("updated")
    body, headers = signed_event_request(signing_key(WEBHOOK_SECRET), sent,
                                         datetime.now(UTC))
    assert headers["webhook-id"] == "inc_abcdefghijklmnopqrst:2" == message_id(sent.to_message())
    verified = Webhook(WEBHOOK_SECRET).verify(body, headers)
    assert verified["type"] == "incident.updated" and set(verified) == {"type", "timestamp", "data"}


def test_incidents_list_shows_group_trigger_counts_and_age() -> None:
    """One line per incident: id, status, trigger, route, calls, age and the group."""
    table = format_table([snapshot()], T0 + 3725)
    assert "inc_abcdefghijklmnopqrst" in table and "storm" in table and "voice-ops" in table
    assert " 57 " in table and "1h02m" in table and "issue sdk_edge/connection/error/31005" in table
    assert format_table([], T0) == "no incidents" and age(45) == "45s"
