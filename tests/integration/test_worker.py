"""The worker process: moves due calls from the intake and runs their analysis."""

from __future__ import annotations

import redis as redis_lib
from rq.job import Job
from rq.serializers import JSONSerializer

from service.simulator.server import SimulatorServer
from service.web import create_app
from tests.processes import settings_env, worker
from tests.simulator_fixtures import simulator
from tests.web_helpers import Callbacks, callback_params, make_settings
from workers.queues import analysis_job_id

__all__ = ["simulator"]


def test_worker_runs_the_analysis_once_its_delay_passes(redis_server, redis: redis_lib.Redis,
                                                        simulator: SimulatorServer) -> None:
    """With ANALYSIS_DELAY_SECONDS=1 a running worker starts the analysis once, after the delay."""
    env = {"TWILIO_ACCOUNT_SID": simulator.account_sid, "TWILIO_AUTH_TOKEN": simulator.auth_token,
           "TWILIO_INSIGHTS_BASE_URL": simulator.url}
    app = create_app(make_settings(redis_server.url, ANALYSIS_DELAY_SECONDS="1", **env), redis=redis)
    sid = simulator.add_call("clean")
    params = callback_params(sid, AccountSid=simulator.account_sid)
    assert Callbacks(app.test_client()).post(params, token=simulator.auth_token).status_code == 204
    process = worker(settings_env(redis_server.url, **env)).start()
    try:
        process.wait_for(lambda: bool(process.events("analysis_no_alert")), timeout=30)
        job = Job.fetch(analysis_job_id(sid), connection=redis, serializer=JSONSerializer)
        process.wait_for(lambda: job.get_status(refresh=True) == "finished", timeout=10)
        [started] = process.events("analysis_started")
        assert started["call_sid"] == sid
        assert started["status"] == "completed"
        assert started["to"] != "+14155550123"  # the number is masked in logs
        assert started["to"].endswith("23")
        assert "+14155550123" not in process.output
    finally:
        process.close()


def test_sigterm_stops_an_idle_worker_cleanly(redis_server) -> None:
    """SIGTERM (Heroku's and Kubernetes' stop) ends an idle worker at once, exit code 0."""
    import os
    import signal

    process = worker(settings_env(redis_server.url)).start()
    try:
        process.wait_for(lambda: "Listening on" in process.output, timeout=30)
        assert process.proc is not None
        os.kill(process.proc.pid, signal.SIGTERM)
        assert process.proc.wait(timeout=15) == 0  # not killed: it exited by itself
        assert not process.events("worker_stopped_unexpectedly")
    finally:
        process.close()
