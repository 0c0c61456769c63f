"""Delivery through faults: receivers failing, Slack's 429 and permanent refusals."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis as redis_lib
from rq import get_current_job
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from devtools.pipeline import Pipeline, pipeline_settings
from devtools.sample_alerts import WEBHOOK_SECRET, sample_alert
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn, WebhookReceiver
from service import keys
from service.delivery.sink_health import SinkHealth
from service.delivery.sinks.webhook import webhook_sink_names
from service.delivery.step import UNKNOWN_SINK_WAIT_S
from workers.context import current
from workers.queues import (
    CRASH_RETRY,
    DELIVERY_QUEUE,
    move_to_delivery,
    queue,
    release_unknown_sink_waits,
    schedule_delivery,
    sink_queue_name,
)


@pytest.fixture
def pipe(redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
         slack_receiver: SlackStandIn, webhook_receiver: WebhookReceiver) -> Iterator[Pipeline]:
    settings = pipeline_settings(redis_server.url, simulator, slack=slack_receiver,
                                 webhooks=[webhook_receiver.url], secret=WEBHOOK_SECRET)
    yield Pipeline(settings, redis, simulator)


def test_webhook_500_twice_then_delivered_once(pipe: Pipeline,
                                               webhook_receiver: WebhookReceiver) -> None:
    """500, 500, 200: three attempts with the same webhook-id, one delivery."""
    webhook_receiver.script([(500, "boom"), (500, "boom")])
    pipe.play("sdk-error")
    pipe.drain()
    attempts = webhook_receiver.deliveries
    assert [d.status for d in attempts] == [500, 500, 200]
    assert len({d.webhook_id for d in attempts}) == 1
    assert all(d.verified for d in attempts)
    assert len(webhook_receiver.accepted()) == 1


def test_slack_429_retry_after_is_honoured(pipe: Pipeline, slack_receiver: SlackStandIn) -> None:
    """Slack's 429 with Retry-After: 2 delays the next attempt by at least 2 s; one message."""
    slack_receiver.script([(429, "rate_limited", {"Retry-After": "2"})])
    pipe.play("sdk-error")
    pipe.drain()
    first, second = slack_receiver.messages
    assert first.status == 429 and second.status == 200
    assert second.received_at - first.received_at >= 2.0
    assert len(slack_receiver.accepted()) == 1


@pytest.mark.parametrize(("status", "reason"), [(404, "no_service"), (410, "channel_is_archived")])
def test_slack_permanent_refusal_tried_once(pipe: Pipeline, slack_receiver: SlackStandIn,
                                            webhook_receiver: WebhookReceiver, status: int,
                                            reason: str) -> None:
    """Slack 404/410: one attempt, a log line with Slack's reason; the webhook still arrives."""
    slack_receiver.script([(status, reason)])
    with capture_logs() as logs:
        pipe.play("sdk-error")
        pipe.drain()
    assert len(slack_receiver.messages) == 1
    rejected = [line for line in logs if line["event"] == "alert_delivery_rejected"]
    assert len(rejected) == 1 and rejected[0]["reason"] == reason
    assert len(webhook_receiver.accepted()) == 1
    assert pipe.redis.zcard("rq:failed:delivery") == 1


def test_webhook_gone_is_named(pipe: Pipeline, webhook_receiver: WebhookReceiver) -> None:
    """A webhook answering 410 is not retried and the log says the endpoint is gone."""
    webhook_receiver.script([(410, "gone")])
    with capture_logs() as logs:
        pipe.play("sdk-error")
        pipe.drain()
    assert len(webhook_receiver.deliveries) == 1
    [rejected] = [line for line in logs if line["event"] == "alert_delivery_rejected"]
    assert rejected["reason"] == "endpoint_gone"


def test_delivery_gives_up_after_the_retry_list(pipe: Pipeline,
                                                webhook_receiver: WebhookReceiver) -> None:
    """A receiver failing every time is tried once plus once per DELIVERY_RETRY_SECONDS wait."""
    webhook_receiver.script([(503, "down")] * 10)
    with capture_logs() as logs:
        pipe.play("sdk-error")
        pipe.drain()
    assert len(webhook_receiver.deliveries) == 1 + len(pipe.settings.delivery_retry_seconds)
    assert [line["event"] for line in logs].count("alert_delivery_failed") == 1


def test_a_sink_this_worker_does_not_know_is_left_for_another(pipe: Pipeline) -> None:
    """A queued delivery for a sink this worker does not know (a rollout, a worker without the
    routing file) is neither sent nor failed: it waits in that sink's own queue, where only
    workers that know the sink look, no attempt spent."""
    envelope = sample_alert().to_envelope()
    assert schedule_delivery(pipe.redis, "webhook-0badc0de", envelope)
    with capture_logs() as logs:
        pipe.drain()
    [left] = [line for line in logs if line["event"] == "delivery_left_for_another_worker"]
    assert left["reason"] == "unknown_sink"
    assert pipe.redis.zcard("rq:failed:delivery") == 0
    assert pipe.redis.llen(f"rq:queue:{sink_queue_name('webhook-0badc0de')}") == 1


def test_a_sink_no_worker_knew_for_an_hour_fails_once_with_its_reason(pipe: Pipeline) -> None:
    """After an hour in its sink's queue with no worker that knows the sink, a worker's
    maintenance hands the delivery back; it fails once with ``unknown_sink``, says why, and
    is not handed to the crash retries."""
    envelope = sample_alert().to_envelope()
    assert schedule_delivery(pipe.redis, "webhook-0badc0de", envelope,
                             waiting_since=time.time() - UNKNOWN_SINK_WAIT_S - 1)
    assert release_unknown_sink_waits(pipe.redis, {"slack"}, now=time.time(),
                                      longest_s=UNKNOWN_SINK_WAIT_S)
    with capture_logs() as logs:
        pipe.drain()
    [rejected] = [line for line in logs if line["event"] == "alert_delivery_rejected"]
    assert rejected["reason"] == "unknown_sink"
    assert pipe.redis.zcard("rq:failed:delivery") == 1
    assert pipe.redis.llen(f"rq:queue:{sink_queue_name('webhook-0badc0de')}") == 0


def test_a_waiting_delivery_a_worker_took_first_is_not_handed_back(pipe: Pipeline) -> None:
    """Maintenance read an hour-old delivery in an unknown sink's queue, but a worker that
    knows the sink took it first: it is not put in the delivery queue as well (it would be
    sent by one worker and failed ``unknown_sink`` by another)."""
    envelope = sample_alert().to_envelope()
    assert schedule_delivery(pipe.redis, "webhook-0badc0de", envelope,
                             waiting_since=time.time() - UNKNOWN_SINK_WAIT_S - 1)
    waiting = queue(sink_queue_name("webhook-0badc0de"), pipe.redis)
    [job] = waiting.get_jobs()
    assert pipe.redis.lpop(waiting.key) == job.id.encode()  # the knowing worker's pop
    assert not move_to_delivery(pipe.redis, waiting, job)
    assert pipe.redis.llen(f"rq:queue:{DELIVERY_QUEUE}") == 0


def test_a_healthy_webhook_is_sent_within_the_analysis_and_slack_gets_its_own_job(
        pipe: Pipeline, webhook_receiver: WebhookReceiver) -> None:
    """An alert to a healthy, unpaced sink is sent by the analysis job itself (no delivery
    job to queue and run); a paced sink's (Slack's) waits for its turn in a job of its own;
    a slow sink's goes to a job too, to wait in its line."""
    with capture_logs(processors=[merge_contextvars]) as logs:
        pipe.play("sdk-error")
        pipe.drain()
    sent = {line["sink"]: line["job_id"] for line in logs if line["event"] == "alert_delivered"}
    assert sent["slack"].startswith("deliver-slack-")
    [webhook] = [sink for sink in sent if sink != "slack"]
    assert sent[webhook].startswith("analyze-")
    SinkHealth(pipe.redis).record(webhook, 12.0, answered=False)
    with capture_logs(processors=[merge_contextvars]) as logs:
        pipe.play("sdk-error")
        pipe.drain()
    sent = {line["sink"]: line["job_id"] for line in logs if line["event"] == "alert_delivered"}
    assert sent[webhook].startswith(f"deliver-{webhook}-")
    assert len(webhook_receiver.accepted()) == 2


@contextmanager
def redis_commands(url: str) -> Iterator[list[str]]:
    """Every command the Redis at ``url`` runs within the block (MONITOR), as its text."""
    seen: list[str] = []
    started, end = threading.Event(), f"end-of-watch-{time.monotonic_ns()}"
    watcher = redis_lib.Redis.from_url(url)

    def watch() -> None:
        with watcher.monitor() as monitor:
            started.set()
            for command in monitor.listen():
                if end in command["command"]:
                    return
                seen.append(command["command"])
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert started.wait(5)
    try:
        yield seen
    finally:
        redis_lib.Redis.from_url(url).echo(end)
        thread.join(5)
        watcher.close()


def test_a_prompt_inline_send_spends_no_round_trip_on_the_slow_mark(
        pipe: Pipeline, redis_server, webhook_receiver: WebhookReceiver) -> None:
    """A webhook sent within the analysis was unmarked when its slot was taken: its prompt
    answer deletes no slow mark (a guard must not cost the healthy path); a slow one still
    marks the sink."""
    [webhook] = webhook_sink_names([webhook_receiver.url])
    with redis_commands(redis_server.url) as commands:
        pipe.play("sdk-error")
        pipe.drain()
    assert len(webhook_receiver.accepted()) == 1
    mark = keys.sink_slow(webhook)
    assert any(c.startswith("EVALSHA") and mark in c for c in commands)  # the slot taken
    assert [c for c in commands if c.split()[0].upper() == "DEL" and mark in c] == []
    health = SinkHealth(pipe.redis, unmarked=True)
    assert health.record(webhook, 12.0, answered=False)
    assert health.slow([webhook]) == {webhook: True}


def test_one_sinks_crash_in_an_inline_send_costs_no_other_sink_its_alert(
        redis: redis_lib.Redis, redis_server, simulator: SimulatorServer,
        webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three sinks sent inline by the analysis: the first refuses (400), the second raises
    something unexpected (a bug in a sink); the third still gets the alert, the second
    gets it from the delivery job queued for it, the analysis does not fail, and the
    refusal left the analysis job its crash retries."""
    urls = [webhook_receiver.url_for(name) for name in ("one", "two", "three")]
    pipe = Pipeline(pipeline_settings(redis_server.url, simulator, webhooks=urls,
                                      secret=WEBHOOK_SECRET), redis, simulator)
    webhook_receiver.script([(400, "rejected")])
    second = current().sinks.get(webhook_sink_names(urls)[1])
    send, crashes = second.send, []

    def crash_once(alert: Any) -> None:
        if not crashes:
            job = get_current_job()
            crashes.append(job.retries_left if job is not None else None)
            raise RuntimeError("a bug in a sink")
        send(alert)

    monkeypatch.setattr(second, "send", crash_once)
    with capture_logs() as logs:
        pipe.play("sdk-error")
        pipe.drain()
    assert crashes == [CRASH_RETRY.max]
    assert (webhook_receiver.deliveries[0].name, webhook_receiver.deliveries[0].status) == ("one", 400)
    assert sorted(d.name for d in webhook_receiver.accepted()) == ["three", "two"]
    [inline_failed] = [line for line in logs if line["event"] == "delivery_inline_failed"]
    assert inline_failed["error"] == "RuntimeError"
    assert pipe.redis.zcard("rq:failed:analysis") == 0
    assert pipe.redis.zcard("rq:failed:delivery") == 1
