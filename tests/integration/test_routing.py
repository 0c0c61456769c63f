"""Routing through the whole pipeline: real Redis, RQ jobs in-process, every stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis as redis_lib
from structlog.testing import capture_logs

from devtools.pagerduty_standin import PagerDutyStandIn
from devtools.pipeline import Pipeline, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.smtp_standin import SmtpStandIn
from devtools.standins import SlackStandIn, WebhookReceiver
from devtools.teams_standin import TeamsStandIn
from service import keys
from service.routing_file.load import load

JS, ANDROID = {"seed": 1}, {"seed": 0}
CONTRACT_ROUTES = """
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


class Receivers:
    """Every stand-in, and what each received, by sink name."""

    def __init__(self, slack: SlackStandIn, pd: PagerDutyStandIn, teams: TeamsStandIn,
                 smtp: SmtpStandIn, hooks: WebhookReceiver) -> None:
        self.slack, self.pd, self.teams, self.smtp, self.hooks = slack, pd, teams, smtp, hooks
        slack.min_interval_s = 0

    def sinks(self) -> str:
        return f"""
sinks:
  voice-ops: {{type: slack, url: "{self.slack.url}"}}
  oncall:    {{type: pagerduty, routing_key: "${{PD_ROUTING_KEY}}"}}
  teams:     {{type: teams, url: "{self.teams.url}"}}
  ops-mail:  {{type: email, to: [voice-ops@example.com]}}
  crm:       {{type: webhook, url: "{self.hooks.url_for('crm')}", secret: "${{CRM_SECRET}}"}}
"""

    def env(self, routes: str) -> dict[str, str]:
        return {"CALLWATCH_CONFIG": self.sinks() + routes, "PD_ROUTING_KEY": "R" * 32,
                "CRM_SECRET": WEBHOOK_SECRET, "PAGERDUTY_EVENTS_URL": self.pd.url,
                "SMTP_URL": self.smtp.url, "ALERT_EMAIL_FROM": "callwatch@example.com"}

    def received(self) -> dict[str, int]:
        """How many messages each sink got, for the sinks that got any."""
        counts = {"voice-ops": len(self.slack.accepted()), "oncall": len(self.pd.accepted()),
                  "teams": len(self.teams.accepted()), "ops-mail": len(self.smtp.accepted()),
                  "crm": len(self.hooks.accepted())}
        return {name: n for name, n in counts.items() if n}


@pytest.fixture
def receivers(slack_receiver: SlackStandIn, pagerduty: PagerDutyStandIn, teams: TeamsStandIn,
              smtp: SmtpStandIn, webhook_receiver: WebhookReceiver) -> Receivers:
    return Receivers(slack_receiver, pagerduty, teams, smtp, webhook_receiver)


@pytest.fixture
def make_pipe(redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
              receivers: Receivers) -> Iterator:
    def make(routes: str) -> Pipeline:
        env = receivers.env(routes)
        settings = pipeline_settings(redis_server.url, simulator, **env)
        return Pipeline(settings, redis, simulator, routing=load(settings, env))
    yield make


@pytest.mark.parametrize(("scenario", "options", "expected"), [
    ("sdk-error", JS, {"oncall": 1, "voice-ops": 1}),
    ("mic-denied", JS, {"oncall": 1, "voice-ops": 1}),
    ("warnings-cleared", JS, {"voice-ops": 1}),
    ("warnings-cleared", ANDROID, {"crm": 1}),
])
def test_contract_routes_send_where_they_say(make_pipe, receivers: Receivers, scenario: str,
                                             options: dict, expected: dict[str, int]) -> None:
    """Each example of the contract's routing file reaches exactly the sinks it names."""
    pipe = make_pipe(CONTRACT_ROUTES)
    pipe.play(scenario, **options)
    pipe.drain()
    assert receivers.received() == expected


def test_continue_fans_out_to_every_matching_route(make_pipe, receivers: Receivers) -> None:
    """With continue, an error alert reaches the pager and the next matching route's sinks."""
    pipe = make_pipe("""
routes:
  - {match: {severity: error}, sinks: [oncall], continue: true}
  - {match: {sdk_type: twilio-voice-js}, sinks: [teams, ops-mail]}
  - {match: {severity: error}, sinks: [crm]}
""")
    pipe.play("sdk-error", **JS)
    pipe.drain()
    assert receivers.received() == {"oncall": 1, "teams": 1, "ops-mail": 1}


def test_drop_route_sends_nothing_and_is_not_unrouted(make_pipe, receivers: Receivers) -> None:
    """A route with no sinks takes the alert and sends it nowhere, without alert_unrouted;
    the log line names the route that dropped it."""
    pipe = make_pipe("routes:\n  - {match: {error_code: 31401}, sinks: []}\ndefault: [crm]\n")
    with capture_logs() as logs:
        pipe.play("mic-denied", **JS)
        pipe.drain()
    assert receivers.received() == {}
    assert [e["route"] for e in logs if e["event"] == "alert_dropped"] == ["routes[0]"]
    assert not [e for e in logs if e["event"] in ("alert_unrouted", "alert_created")]


def test_unrouted_alert_is_logged_and_counted(make_pipe, receivers: Receivers,
                                              redis: redis_lib.Redis) -> None:
    """An alert that no route and no default takes is logged alert_unrouted and counted."""
    pipe = make_pipe("routes:\n  - {match: {severity: error}, sinks: [oncall]}\n")
    with capture_logs() as logs:
        pipe.play("warnings-cleared", **JS)
        pipe.drain()
    assert receivers.received() == {}
    [unrouted] = [e for e in logs if e["event"] == "alert_unrouted"]
    assert unrouted["alert_id"].startswith("alr_")
    counted = redis.hgetall(keys.METRICS_PREFIX + "callwatch_alerts_unrouted")
    assert {k.decode(): float(v) for k, v in counted.items()} == {"[]": 1.0}


def test_teams_and_email_through_the_pipeline(make_pipe, receivers: Receivers) -> None:
    """The Teams card and the email (both parts) carry the call, its issues and its client."""
    pipe = make_pipe("default: [teams, ops-mail]\n")
    sid = pipe.play("sdk-error", **JS)
    pipe.drain()
    [card] = receivers.teams.accepted()
    [mail] = receivers.smtp.accepted()
    for text in (card.text(), mail.part("plain"), mail.part("html")):
        assert sid in text
        assert "sdk_edge/connection/error/31005" in text
        assert "twilio-voice-js" in text


def test_sink_names_label_the_delivery_metrics(make_pipe, redis: redis_lib.Redis) -> None:
    """Deliveries are counted under the routing file's sink names."""
    pipe = make_pipe(CONTRACT_ROUTES)
    pipe.play("sdk-error", **JS)
    pipe.drain()
    fields = redis.hgetall(keys.METRICS_PREFIX + "callwatch_deliveries")
    labels = {tuple(json.loads(k)) for k in fields}
    assert {("oncall", "delivered"), ("voice-ops", "delivered")} <= labels
