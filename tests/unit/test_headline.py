"""Headlines: who (the agent, the other party masked as in the logs) and what (the first
issue) before the counts, in ``summary`` and so in every sink."""

from __future__ import annotations

from dataclasses import replace

from devtools.sample_alerts import sample_alert
from service.analysis.alert import SCHEMA_VERSION, Alert
from service.analysis.headline import headline, identity, who
from service.calls import Call, mask_number


def call(from_: str | None, to: str | None) -> Call:
    return Call(call_sid="CA" + "0" * 32, account_sid="AC" + "1" * 32, status="completed",
                from_=from_, to=to)


def test_summary_says_who_and_what_then_the_counts() -> None:
    """The agent, an arrow, the callee masked exactly as the logs mask it, the first error's
    description and code; then the counts as before; schema version 1 unchanged."""
    alert = sample_alert(description="The Twilio gateway hung up with an error.")
    assert alert.summary == (f"alice → {mask_number('+14155550123')}: The Twilio gateway hung up "
                             f"with an error (31005); 1 error, 1 warning on {alert.call.call_sid} "
                             "(completed, 42 s)")
    assert "4155550123" not in alert.summary
    assert alert.to_payload()["schema_version"] == SCHEMA_VERSION == 1


def test_the_agent_comes_first_on_a_call_to_the_agent() -> None:
    """An inbound call to an agent still opens with the agent, the arrow pointing at them."""
    assert who(call("+14155550123", "client:alice")) == f"alice ← {mask_number('+14155550123')}"
    assert who(call("client:alice", "client:bob")) == "alice → bob"
    assert identity(call("+14155550123", "client:alice")) == "alice"
    assert identity(call("+14155550123", "+14155550199")) is None


def test_errors_come_before_warnings_and_long_text_is_cut() -> None:
    """The first error names the alert even when a warning is listed first; a long
    description is cut at a word, with an ellipsis."""
    alert = sample_alert(issues=2, description="word " * 60)
    warning_first = (alert.issues[1], alert.issues[0])
    text = headline(alert.call, warning_first)
    assert text.endswith("… (31005)") and len(text) < 180


def test_text_from_a_call_cannot_mention_or_break_lines() -> None:
    """Angle brackets and line breaks from a call (identity, description) are defused."""
    alert = sample_alert(issues=1, description="<!channel>\nboom")
    hostile = Alert(alert_id=alert.alert_id, created_at=alert.created_at,
                    call=replace(alert.call, from_="client:<@U123>"), issues=alert.issues)
    assert "<" not in hostile.summary and "\n" not in hostile.summary
    assert hostile.summary.startswith("\u2039@U123\u203a → ")


def test_a_call_with_no_parties_opens_with_the_problem() -> None:
    """No From/To in the callback: the headline is the problem alone."""
    alert = sample_alert(issues=1, description="Boom.")
    bare = Alert(alert_id=alert.alert_id, created_at=alert.created_at,
                 call=replace(alert.call, from_=None, to=None), issues=alert.issues)
    assert bare.summary.startswith("Boom (31005); 1 error on ")
