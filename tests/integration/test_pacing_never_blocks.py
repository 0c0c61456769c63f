"""A paced sink waits in Redis, not in the worker: other sinks' alerts are never held behind it."""

from __future__ import annotations

import redis as redis_lib

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver


def test_a_paced_slack_alert_does_not_delay_a_webhook_alert(
        redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
        slack_receiver: SlackStandIn, webhook_receiver: WebhookReceiver) -> None:
    """With one worker, six alerts' webhooks all arrive while Slack's paced messages still wait."""
    settings = pipeline_settings(redis_server.url, simulator, slack=slack_receiver,
                                 webhooks=[webhook_receiver.url], secret=WEBHOOK_SECRET)
    pipe = Pipeline(settings, redis, simulator)
    sids = [pipe.play("sdk-error") for _ in range(6)]
    pipe.drain(until=lambda: len(webhook_receiver.accepted()) >= 6, timeout=30)
    # Slack takes one message a second: had the worker slept for Slack's turns, the
    # later webhooks would have arrived only after the Slack messages before them.
    assert len(slack_receiver.accepted()) < 6
    pipe.drain(until=lambda: len(slack_receiver.accepted()) >= 6, timeout=60)
    texts = " ".join(m.payload["text"] for m in slack_receiver.accepted())
    assert all(sid in texts for sid in sids)
    assert len(webhook_receiver.unique_ids()) == 6 == len(webhook_receiver.accepted())
    assert not [m for m in slack_receiver.messages if m.status == 429]
