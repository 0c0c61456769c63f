"""Delivery with real worker processes: a worker killed mid-delivery, and Slack's pace."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
import redis as redis_lib

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.processes import Process, worker
from devtools.sample_alerts import WEBHOOK_SECRET
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver


def worker_env(pipe: Pipeline) -> dict[str, str]:
    s = pipe.settings
    env = {"TWILIO_ACCOUNT_SID": s.twilio_account_sid, "TWILIO_AUTH_TOKEN": s.twilio_auth_token,
           "TWILIO_INSIGHTS_BASE_URL": s.twilio_insights_base_url, "REDIS_URL": s.redis_url,
           "ANALYSIS_DELAY_SECONDS": "0", "DELIVERY_RETRY_SECONDS": "1,1,1",
           "LOG_FORMAT": "json"}
    if s.slack_webhook_url:
        env["SLACK_WEBHOOK_URL"] = s.slack_webhook_url
    if s.alert_webhook_urls:
        env["ALERT_WEBHOOK_URLS"] = ",".join(s.alert_webhook_urls)
        env["ALERT_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    return env


@pytest.fixture
def workers() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


@pytest.mark.slow
def test_worker_killed_mid_delivery_still_delivers_once(
        redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
        workers: list[Process]) -> None:
    """SIGKILL of a worker's whole tree while a webhook is in flight: the alert still arrives,
    with the same webhook-id, and no second alert id is ever sent."""
    with WebhookReceiver(WEBHOOK_SECRET, hold_s=30) as receiver:
        settings = pipeline_settings(redis_server.url, simulator, webhooks=[receiver.url],
                                     secret=WEBHOOK_SECRET)
        pipe = Pipeline(settings, redis, simulator)
        first = worker(worker_env(pipe)).start()
        workers.append(first)
        pipe.play("sdk-error")
        first.wait_for(lambda: len(receiver.deliveries) == 1, timeout=30)
        first.kill_tree()
        receiver.hold_s = 0
        killed_at = time.monotonic()
        second = worker(worker_env(pipe)).start()
        workers.append(second)
        second.wait_for(lambda: len(receiver.deliveries) >= 2, timeout=180)
        recovered_s = time.monotonic() - killed_at
        time.sleep(2)  # anything else in flight would arrive now
        ids = [d.webhook_id for d in receiver.deliveries]
        assert len(ids) == 2 and len(set(ids)) == 1, ids
        assert all(d.verified for d in receiver.deliveries)
        print(f"delivery recovered {recovered_s:.0f} s after the kill")


@pytest.mark.slow
def test_thirty_alerts_paced_across_two_workers(
        redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
        workers: list[Process]) -> None:
    """30 alerts to one Slack webhook from two workers: all arrive once, one a second at most."""
    with SlackStandIn(min_interval_s=1.0) as slack:
        settings = pipeline_settings(redis_server.url, simulator, slack=slack)
        pipe = Pipeline(settings, redis, simulator)
        sids = [pipe.play("sdk-error") for _ in range(30)]
        for n in range(2):
            workers.append(worker({**worker_env(pipe), "CALLWATCH_CONFIG": '{"storm": false}'},
                                  "--name", f"pace-{n}").start())
        workers[0].wait_for(lambda: len(slack.accepted()) >= 30, timeout=150)
        time.sleep(2)
        accepted = slack.accepted()
        texts = [m.payload["text"] for m in accepted]
        assert len(accepted) == 30
        assert all(any(sid in text for text in texts) for sid in sids)
        times = sorted(m.received_at for m in accepted)
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.9
        refused = [m for m in slack.messages if m.status == 429]
        assert len(refused) <= 3, f"{len(refused)} messages hit Slack's rate limit"
        assert {w.proc.pid for w in workers if w.proc} and all(
            w.events("worker_starting") for w in workers)
