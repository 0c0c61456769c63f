"""Queue depths on /metrics come from the worker edge's ``QueueDepths``, not from the domain."""

from __future__ import annotations

from datetime import timedelta

import redis as redis_lib
from prometheus_client.parser import text_string_to_metric_families

from devtools.web_client import make_settings
from service.intake import Intake
from service.web import create_app
from workers.queue_depths import RQQueueDepths
from workers.queues import ANALYSIS_QUEUE, DELIVERY_QUEUE, queue


def _depths(client: object) -> dict[tuple[str, str], float]:
    text = client.get("/metrics").get_data(as_text=True)  # type: ignore[attr-defined]
    return {(s.labels["queue"], s.labels["state"]): s.value
            for family in text_string_to_metric_families(text) if family.name == "callwatch_queue_jobs"
            for s in family.samples}


def test_metrics_show_each_queue_by_state(redis_server, redis: redis_lib.Redis) -> None:
    """Queued and scheduled jobs, and calls waiting in the intake, show per queue and state."""
    delivery = queue(DELIVERY_QUEUE, redis)
    delivery.enqueue("workers.jobs.deliver_alert", "slack", {}, job_id="d1")
    queue(ANALYSIS_QUEUE, redis).enqueue_in(timedelta(hours=1),
                                            "workers.jobs.analyze_call", {}, job_id="a1")
    Intake(redis).admit({"call_sid": "CA" + "0" * 32}, due_at=2e9)
    app = create_app(make_settings(redis_server.url), redis=redis, queue_depths=RQQueueDepths())
    depths = _depths(app.test_client())
    assert depths[(DELIVERY_QUEUE, "queued")] == 1
    assert depths[(ANALYSIS_QUEUE, "scheduled")] == 2  # one RQ job, one call in the intake
    assert depths[(ANALYSIS_QUEUE, "started")] == 0
    assert depths[(DELIVERY_QUEUE, "failed")] == 0


def test_an_app_without_queue_depths_shows_no_queue_gauge(redis_server,
                                                           redis: redis_lib.Redis) -> None:
    """The web edge alone knows no job queue: without a provider there is no queue gauge."""
    app = create_app(make_settings(redis_server.url), redis=redis)
    assert _depths(app.test_client()) == {}
