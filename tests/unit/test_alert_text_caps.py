"""Twilio's texts are cut at 1,000 characters when the classifier builds the alert."""

from __future__ import annotations

from datetime import UTC, datetime

from service.analysis.alert import MAX_TWILIO_TEXT, Alert, cap_text
from service.analysis.classifier import AlertPolicy, build_alert
from service.calls import Call
from service.insights.events import ClientInfo, Event

T0 = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
SID = "CA" + "1" * 32


def test_build_alert_cuts_sdk_message_city_and_identity() -> None:
    """A 2 MB city, a 300,000-character SDK message and a 5,000-character identity come out
    at 1,000 characters ending in ``…``; the alert id is the one the full issue keys give."""
    client = ClientInfo(sdk_type="twilio-voice-js", city="Q" * 2_000_000, country_code="US")
    events = [Event(timestamp=T0, call_sid=SID, account_sid="AC" + "2" * 32, edge="sdk_edge",
                    group="connection", name="error", level="ERROR", error_code=31005,
                    error_message="gateway: " + "m" * 300_000, client=client)]
    call = Call(call_sid=SID, account_sid="AC" + "2" * 32, status="completed",
                from_="client:" + "z" * 5000, to="+14155550123", duration_s=4)
    alert = build_alert(call, events, AlertPolicy(), now=T0)
    assert alert is not None
    [issue] = alert.issues
    assert issue.sdk_message is not None and len(issue.sdk_message) == MAX_TWILIO_TEXT
    assert issue.sdk_message.startswith("gateway: mmm") and issue.sdk_message.endswith("…")
    assert alert.client is not None and alert.client.city == "Q" * 999 + "…"
    assert alert.call.from_ == ("client:" + "z" * 5000)[:999] + "…"
    assert len(alert.summary) <= MAX_TWILIO_TEXT
    assert alert.call.to == "+14155550123" and alert.client.country_code == "US"
    assert Alert.from_envelope(alert.to_envelope()) == alert


def test_cap_text_leaves_short_text_alone() -> None:
    """Text of 1,000 characters or fewer, and None, pass unchanged."""
    assert cap_text("x" * MAX_TWILIO_TEXT) == "x" * MAX_TWILIO_TEXT
    assert cap_text(None) is None
    assert cap_text("abcdef", 4) == "abc…"
