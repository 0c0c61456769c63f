"""The worker process: runs RQ's scheduler and the analysis job once its delay passes."""

from __future__ import annotations

import redis as redis_lib
from rq.job import Job
from rq.serializers import JSONSerializer

from service.web import create_app
from tests.processes import settings_env, worker
from tests.web_helpers import Callbacks, call_sid, callback_params, make_settings
from workers.queues import analysis_job_id


def test_worker_runs_scheduled_analysis_after_delay(redis_server, redis: redis_lib.Redis) -> None:
    """With ANALYSIS_DELAY_SECONDS=1 a running worker starts the analysis once, after the delay."""
    app = create_app(make_settings(redis_server.url, ANALYSIS_DELAY_SECONDS="1"), redis=redis)
    sid = call_sid(77)
    assert Callbacks(app.test_client()).post(callback_params(sid)).status_code == 204
    process = worker(settings_env(redis_server.url)).start()
    try:
        process.wait_for(lambda: bool(process.events("analysis_started")), timeout=30)
        job = Job.fetch(analysis_job_id(sid), connection=redis, serializer=JSONSerializer)
        process.wait_for(lambda: job.get_status(refresh=True) == "finished", timeout=10)
        [started] = process.events("analysis_started")
        assert started["call_sid"] == sid
        assert started["status"] == "completed"
        assert started["to"] != "+14155550123"  # the number is masked in logs
        assert started["to"].endswith("23")
    finally:
        process.close()
