"""A storm through the real jobs: callbacks, analysis, folding, the incident timer, ordered
deliveries to Slack and a webhook; and ``callwatch incidents list`` against the same Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis as redis_lib

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.redis_server import RedisServer
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver
from service import cli
from service.delivery.incidents.policy import StormPolicy
from service.delivery.routing import Router
from workers import context

STORM = StormPolicy(calls=3, within_s=60, update_every_s=1, resolve_after_s=2)


@pytest.fixture
def pipe(redis: redis_lib.Redis, redis_server: RedisServer, simulator: SimulatorServer,
         slack_receiver: SlackStandIn, webhook_receiver: WebhookReceiver) -> Iterator[Pipeline]:
    slack_receiver.min_interval_s = 0  # pacing has its own test; keep this quick
    settings = pipeline_settings(redis_server.url, simulator, slack=slack_receiver,
                                 webhooks=[webhook_receiver.url], secret=WEBHOOK_SECRET)
    built = Pipeline(settings, redis, simulator)
    current = context.current()
    current.router = Router(current.sinks.names, storm=STORM)
    yield built


def test_a_storm_opens_folds_and_resolves_through_the_jobs(
        pipe: Pipeline, slack_receiver: SlackStandIn, webhook_receiver: WebhookReceiver,
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Eight calls failing alike: Slack shows two alerts, then opened and resolved (in that
    order); the webhook gets all eight alerts and the incident events; the list shows it."""
    sids = [pipe.play("sdk-error") for _ in range(8)]

    def resolved() -> bool:
        return any(d.body.get("type") == "incident.resolved" for d in webhook_receiver.accepted()) \
            and any("Incident resolved" in str(m.payload.get("text")) for m in slack_receiver.accepted())

    pipe.drain(until=resolved, timeout=60)
    texts = [str(m.payload["text"]) for m in slack_receiver.accepted()]
    alerts = [t for t in texts if "Incident" not in t]
    incident = [t.split("Incident ")[1].split(":")[0] for t in texts if "Incident" in t]
    assert len(alerts) == 2 and incident[0] == "opened" and incident[-1] == "resolved"
    bodies = [d.body for d in webhook_receiver.accepted()]
    assert sorted(b["data"]["call"]["call_sid"] for b in bodies if b["type"] == "call.alert") == sorted(sids)
    events = [b for b in bodies if b["type"].startswith("incident.")]
    assert events[0]["type"] == "incident.opened"
    assert events[-1]["type"] == "incident.resolved" and events[-1]["data"]["calls"] == 6
    assert all(d.verified for d in webhook_receiver.accepted())

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    capsys.readouterr()  # the pipeline's log lines
    assert cli.main(["incidents", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(i["status"], i["trigger"], i["calls"]) for i in listed] == [("resolved", "storm", 6)]
