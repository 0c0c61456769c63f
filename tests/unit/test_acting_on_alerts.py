"""What an on-call person sees and configures: who and what first in every sink, numbers
masked, buttons with a signing secret, ``digest:`` and ``identity`` in the routing file."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from devtools.sample_alerts import sample_alert
from devtools.standins import slack_payload_problem
from devtools.teams_standin import shown
from service.analysis.alert import Alert
from service.cli.incidents import format_table
from service.delivery.incidents.events import build_event
from service.delivery.incidents.store import Snapshot
from service.delivery.routing import matches
from service.delivery.silences import parse_pairs
from service.delivery.sinks.email import email_message
from service.delivery.sinks.pagerduty import pagerduty_event
from service.delivery.sinks.slack_blocks import slack_incident_message, slack_message
from service.delivery.sinks.teams import teams_message
from service.errors import ConfigError
from service.routing_file.parse import parse_config

NUMBER = "4155550123"
T0 = 1_800_000_000.0


def test_every_sink_opens_with_who_and_what_and_masks_the_number() -> None:
    """Slack's header, Teams' title, the e-mail's subject and PagerDuty's summary start with
    the agent, the masked callee and the problem; no sink shows the whole number."""
    alert = sample_alert(description="The Twilio gateway hung up with an error.")
    who_what = "alice → +1********23: The Twilio gateway hung up with an error (31005)"
    slack = slack_message(alert)
    teams = teams_message(alert)
    mail = email_message(alert, "callwatch@example.com", ["ops@example.com"])
    pager = pagerduty_event(alert, "R" * 32)
    assert slack["blocks"][0]["text"]["text"] == f":rotating_light: {who_what}"
    assert shown(teams["attachments"][0]["content"]["body"][0]["text"]) == who_what
    assert str(mail["Subject"]) == f"[callwatch error] {who_what}; 1 error, 1 warning on " \
                                   f"{alert.call.call_sid} (completed, 42 s)"
    assert pager["payload"]["summary"].startswith(f"callwatch error: {who_what}")
    for rendered in (json.dumps(slack), json.dumps(teams), mail.as_string(), json.dumps(pager)):
        assert NUMBER not in rendered


def test_buttons_only_with_a_signing_secret() -> None:
    """With actions, an alert carries "Silence issue 1 h" (its first error) and "Silence
    agent 1 h" (its agent), within Slack's limits; without, no button."""
    alert = sample_alert(issues=60)
    plain, with_buttons = slack_message(alert), slack_message(alert, actions=True)
    assert all(b["type"] != "actions" for b in plain["blocks"])
    assert slack_payload_problem(with_buttons) is None
    [actions] = [b for b in with_buttons["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"], e["text"]["text"]) for e in actions["elements"]] == [
        ("silence_issue", "sdk_edge/connection/error/31000", "Silence issue 1 h"),
        ("silence_agent", "alice", "Silence agent 1 h")]


def snapshot(status: str = "open", **extra: str) -> Snapshot:
    fields = {"id": "inc_abcdefghijklmnopqrst", "route": "repeat-offenders", "trigger": "storm",
              "group": json.dumps({"identity": "bob"}), "status": status, "opened_at": repr(T0),
              "updated_at": repr(T0 + 300), "calls": "3",
              "c:issue:sdk_edge/network-quality-warning/high-jitter": "3", **extra}
    return Snapshot(fields, ("CA" + "0" * 32,), 1)


def test_incident_names_the_agent_and_offers_acknowledge_until_someone_did() -> None:
    """A per-agent incident reads "agent bob: 3 calls with high jitter"; it offers to silence
    the agent and the issue and to acknowledge, until acknowledged; resolved offers nothing."""
    now = datetime.fromtimestamp(T0 + 300, UTC)
    opened = slack_incident_message(build_event("opened", 1, snapshot(), now), actions=True)
    assert opened["blocks"][0]["text"]["text"].endswith(
        "Incident opened: agent bob: 3 calls with high jitter (route repeat-offenders)")
    [actions] = [b for b in opened["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == ["silence_issue", "silence_agent",
                                                           "acknowledge"]
    acked = build_event("updated", 2, snapshot(acknowledged_by="carol"), now)
    assert acked.data["acknowledged_by"] == "carol"
    [actions] = [b for b in slack_incident_message(acked, actions=True)["blocks"]
                 if b["type"] == "actions"]
    assert "acknowledge" not in [e["action_id"] for e in actions["elements"]]
    assert "*Acknowledged* by carol" in json.dumps(slack_incident_message(acked))
    resolved = build_event("resolved", 3, snapshot("resolved", resolved_at=repr(T0 + 900)), now)
    assert all(b["type"] != "actions" for b in slack_incident_message(resolved, actions=True)["blocks"])
    table = format_table([snapshot(acknowledged_by="carol"), snapshot()], T0 + 600)
    assert "ACKNOWLEDGED" in table.splitlines()[0]
    assert " carol " in table.splitlines()[1] and " - " in table.splitlines()[2]


def test_identity_matches_the_agent_on_either_end() -> None:
    """``identity`` (a glob) matches the ``client:`` party whether it called or was called,
    in a route and in a silence."""
    out = sample_alert()
    inbound = Alert(alert_id="alr_in", created_at=out.created_at, issues=out.issues,
                    call=replace(out.call, from_="+14155550123", to="client:alice"))
    config = parse_config("routes:\n  - {match: {identity: 'ali*'}, sinks: []}\n", {})
    assert matches(config.routes[0].match, out) and matches(config.routes[0].match, inbound)
    assert not matches(parse_pairs(["identity=bob"]), inbound)


DIGEST_SINKS = """
sinks:
  mail: {type: email, to: [a@example.com], digest: {every: day, at: "08:00", tz: Europe/Dublin}}
  chat: {type: slack, url: "https://hooks.slack.com/x", digest: {every: hour, at: ":05"}}
  cards: {type: teams, url: "https://example.webhook.office.com/x", digest: {every: hour}}
"""
MAIL_ENV = {"SMTP_URL": "smtp://mail.example.com:587", "ALERT_EMAIL_FROM": "callwatch@example.com"}


def test_digest_option_on_slack_teams_and_email() -> None:
    """``digest:`` is taken by chat and mail sinks, kept as written."""
    config = parse_config(DIGEST_SINKS, MAIL_ENV)
    assert {s.name: s.options["digest"]["every"] for s in config.sinks} == {
        "mail": "day", "chat": "hour", "cards": "hour"}


@pytest.mark.parametrize(("text", "path"), [
    ("sinks:\n  s: {type: slack, url: 'https://x', digest: {every: week}}\n", "sinks.s.digest.every"),
    ("sinks:\n  s: {type: slack, url: 'https://x', digest: {at: '8 am'}}\n", "sinks.s.digest.at"),
    ("sinks:\n  s: {type: slack, url: 'https://x', digest: {tz: Moon/Base}}\n", "sinks.s.digest.tz"),
    ("sinks:\n  s: {type: webhook, url: 'https://x', secret: 'whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY', "
     "digest: {every: day}}\n", "sinks.s.digest"),
])
def test_a_wrong_digest_names_its_key(text: str, path: str) -> None:
    """A wrong digest, or one on a sink type that has none, stops start-up at its key."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, MAIL_ENV)
    assert caught.value.message.startswith(path + ":")
