"""Run the whole pipeline in-process: callbacks through the app, jobs through RQ's workers.

``Pipeline`` wires real Redis, the Twilio simulator and the Slack/webhook stand-ins
together with callwatch's own app and jobs; ``drain`` plays RQ's scheduler and a
``SimpleWorker`` until no job is left (or a deadline passes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis as redis_lib
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from devtools.simulator.sender import callback_params
from devtools.simulator.server import SimulatorServer
from devtools.standins import SlackStandIn
from devtools.web_client import Callbacks
from service.intake import Intake
from service.routing_file.parse import RoutingConfig
from service.settings import Settings
from service.web import create_app
from workers import context
from workers.intake_mover import move_due_calls
from workers.queues import QUEUES, queue
from workers.rq_adaptations.pubsub_reads import ShortPubSubReads


def pipeline_settings(redis_url: str, simulator: SimulatorServer, *,
                      slack: SlackStandIn | None = None, webhooks: list[str] | None = None,
                      secret: str | None = None, **overrides: str) -> Settings:
    env = {
        "TWILIO_ACCOUNT_SID": simulator.account_sid,
        "TWILIO_AUTH_TOKEN": simulator.auth_token,
        "TWILIO_INSIGHTS_BASE_URL": simulator.url,
        "TWILIO_API_BASE_URL": simulator.url,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": "https://callwatch.test",
        "ANALYSIS_DELAY_SECONDS": "0",
        "ANALYSIS_RECHECK_SECONDS": "1,1",
        "DELIVERY_RETRY_SECONDS": "1,1,1",
    }
    if slack is not None:
        env["SLACK_WEBHOOK_URL"] = slack.url
    if webhooks:
        env["ALERT_WEBHOOK_URLS"] = ",".join(webhooks)
        env["ALERT_WEBHOOK_SECRET"] = secret or ""
    env.update(overrides)
    return Settings.from_env(env)


class Pipeline:
    """callwatch's app and jobs over one Redis, the simulator and the stand-ins."""

    def __init__(self, settings: Settings, redis: redis_lib.Redis, simulator: SimulatorServer, *,
                 routing: RoutingConfig | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.simulator = simulator
        self.callbacks = Callbacks(create_app(settings, routing=routing, redis=redis).test_client(),
                                   base="https://callwatch.test")
        context.configure(settings, redis, routing=routing)

    def callback(self, call_sid: str, status: str = "completed", **extra: str) -> int:
        """Post one signed status callback; returns the HTTP status."""
        params = callback_params(call_sid, self.settings.twilio_account_sid, status, **extra)
        response = self.callbacks.post(params, token=self.settings.twilio_auth_token)
        return int(response.status_code)

    def play(self, scenario: str, status: str = "completed", *, extra: dict[str, str] | None = None,
             **options: Any) -> str:
        """Register a call of ``scenario`` in the simulator and post its terminal callback."""
        sid = self.simulator.add_call(scenario, **options)
        assert self.callback(sid, status, **(extra or {})) == 204
        return sid

    def drain(self, until: Callable[[], bool] | None = None, timeout: float = 30.0) -> None:
        drain(self.redis, until=until, timeout=timeout)


class _DrainWorker(ShortPubSubReads, SimpleWorker):
    """RQ's SimpleWorker whose teardown does not wait on a 60 s pub/sub read."""


def drain(redis: redis_lib.Redis, *, until: Callable[[], bool] | None = None,
          timeout: float = 30.0, ahead_s: int = 0, logging_level: str = "INFO") -> None:
    """Move due scheduled jobs (and those due within ``ahead_s``) to their queues and run
    them, until nothing is left (or ``until`` holds)."""
    queues = [queue(name, redis) for name in QUEUES]
    deadline = time.monotonic() + timeout
    while True:
        move_due_calls(redis)
        for q in queues:
            registry = ScheduledJobRegistry(queue=q)
            for job_id in registry.get_jobs_to_schedule(int(time.time()) + ahead_s):
                job = q.fetch_job(job_id)
                registry.remove(job_id)
                if job is not None:
                    q.enqueue_job(job)
        worker = _DrainWorker(queues, connection=redis, serializer=JSONSerializer)
        worker.work(burst=True, with_scheduler=False, logging_level=logging_level)
        pending = Intake(redis).pending() + sum(
            q.count + ScheduledJobRegistry(queue=q).count for q in queues)
        if (until is not None and until()) or (until is None and pending == 0):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"pipeline still has {pending} jobs after {timeout} s")
        time.sleep(0.1)
