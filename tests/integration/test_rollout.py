"""A rollout never loses a delivery: two workers with different routing files on one Redis
(real worker processes, real Redis, a real webhook receiver)."""

from __future__ import annotations

import json
import time

import redis as redis_lib

from devtools.processes import settings_env, worker
from devtools.redis_server import RedisServer
from devtools.sample_alerts import WEBHOOK_SECRET, sample_alert
from devtools.standins import WebhookReceiver
from workers.queues import schedule_delivery

PER_SINK = 8


def _routing(name: str, receiver: WebhookReceiver) -> str:
    return json.dumps({"sinks": {name: {"type": "webhook", "url": receiver.url_for(name),
                                        "secret": WEBHOOK_SECRET}},
                       "default": [name], "storm": False})


def test_two_workers_with_different_routing_files_lose_no_delivery(
        redis_server: RedisServer, redis: redis_lib.Redis,
        webhook_receiver: WebhookReceiver) -> None:
    """Deliveries queued for the old file's sink and the new file's sink, while an old and a
    new worker share one Redis: each worker leaves the other's deliveries for it, and every
    delivery reaches its sink once; none fails as ``unknown_sink``."""
    expected: set[tuple[str, str]] = set()
    for n in range(PER_SINK):
        for sink in ("crm-old", "crm-new"):
            alert = sample_alert(issues=n + 1, call_sid=f"CA{n:032x}")
            assert schedule_delivery(redis, sink, alert.to_envelope())
            expected.add((sink, alert.alert_id))
    old = worker(settings_env(redis_server.url, CALLWATCH_CONFIG=_routing("crm-old", webhook_receiver)),
                 "--concurrency", "1", "--name", "old").start()
    new = worker(settings_env(redis_server.url, CALLWATCH_CONFIG=_routing("crm-new", webhook_receiver)),
                 "--concurrency", "1", "--name", "new").start()
    try:
        def received() -> set[tuple[str, str]]:
            return {(d.name, str(d.webhook_id)) for d in webhook_receiver.accepted()}

        deadline = time.monotonic() + 90
        while received() != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        assert received() == expected
        assert len(webhook_receiver.accepted()) == len(expected)
        assert redis.zcard("rq:failed:delivery") == 0
        rejected = old.events("alert_delivery_rejected") + new.events("alert_delivery_rejected")
        assert rejected == []
        assert old.events("delivery_left_for_another_worker") or \
            new.events("delivery_left_for_another_worker")
    finally:
        old.stop()
        new.stop()
        old.close()
        new.close()
