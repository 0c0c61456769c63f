"""The worker edge under Redis trouble and expected failures: stops, back-off, quiet logs."""

from __future__ import annotations

import os
import signal

import redis as redis_lib
from rq.job import Job
from rq.serializers import JSONSerializer

from devtools.processes import settings_env, worker
from devtools.redis_server import RedisServer
from devtools.simulator.server import SimulatorServer
from devtools.web_client import Callbacks, callback_params, make_settings
from service.web import create_app
from workers.queues import ANALYSIS_QUEUE, analysis_job_id, queue


def test_one_sigterm_stops_a_worker_whose_redis_went_away() -> None:
    """A listening worker whose Redis stops exits 0 within 5 s of a single SIGTERM,
    with the default worker processes and with one."""
    for extra in ((), ("--concurrency", "1")):
        with RedisServer() as server:
            process = worker(settings_env(server.url), *extra).start()
            try:
                process.wait_for(lambda p=process: bool(p.events("worker_listening")), timeout=30)
                server.stop()
                process.wait_for(lambda p=process: bool(p.events("worker_waiting_for_redis")),
                                 timeout=30)
                assert process.exit_code_after_sigterm(5) == 0
            finally:
                process.close()


def test_a_worker_waiting_for_redis_logs_one_line_per_backoff_step() -> None:
    """Waiting for Redis logs one line per back-off step (1, 2, 4 s ...), each naming the
    host and port it waits for, and never the password in REDIS_URL."""
    server = RedisServer()  # nothing listens on its port
    url = f"redis://:hunter2-secret@127.0.0.1:{server.port}/0"
    process = worker(settings_env(url), "--concurrency", "1").start()
    try:
        process.wait_for(lambda: len(process.events("worker_waiting_for_redis")) >= 3, timeout=30)
        assert process.exit_code_after_sigterm(5) == 0
        waits = process.events("worker_waiting_for_redis")
        assert [line["retry_in_s"] for line in waits[:3]] == [1.0, 2.0, 4.0], process.output
        assert {line["redis"] for line in waits} == {f"127.0.0.1:{server.port}"}
        others = {line["event"] for line in process.log_lines()} - {
            "worker_waiting_for_redis", "worker_stopped_waiting_for_redis"}
        assert others <= {"worker_starting"}, others
        assert "hunter2" not in process.output
    finally:
        process.close()


def test_a_full_redis_sends_the_worker_into_backoff_not_a_hot_loop() -> None:
    """When Redis refuses writes (maxmemory reached, noeviction) the worker retries on the
    back-off steps, each with one line naming the OOM error, and keeps no loop spinning."""
    with RedisServer() as server:
        client = redis_lib.Redis.from_url(server.url)
        process = worker(settings_env(server.url), "--concurrency", "1").start()
        try:
            process.wait_for(lambda: bool(process.events("worker_listening")), timeout=30)
            for index in range(4):  # 4 MB of data, well over the limit set below
                client.set(f"ballast:{index}", "x" * 1_000_000)
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", "2mb")  # full: every write refused
            process.wait_for(lambda: len(process.events("worker_waiting_for_redis")) >= 3,
                             timeout=40)
            waits = process.events("worker_waiting_for_redis")
            assert [line["retry_in_s"] for line in waits[:3]] == [1.0, 2.0, 4.0], process.output
            assert {line["error"] for line in waits} == {"OutOfMemoryError"}
            assert all("maxmemory" in line["reason"] for line in waits), waits
            # not a line per attempt of a spinning loop (RQ's scheduler process, which dies
            # on the first refused write, prints its traceback once)
            assert len(process.log_lines()) < 20
            assert len(process.output.splitlines()) < 200
            assert "Exception in thread" not in process.output  # RQ's pub/sub thread ends quietly
            client.config_set("maxmemory", "0")
            assert process.exit_code_after_sigterm(5) == 0
        finally:
            process.close()
            client.close()


def test_an_expected_failure_logs_one_line_and_stays_in_the_failed_registry(
        redis_server, redis: redis_lib.Redis, simulator: SimulatorServer) -> None:
    """A step's Failed (Insights refuses: Advanced Features off) logs its reason and one
    ``job_failed`` line, no traceback; the job waits in RQ's failed registry for ``rq requeue``.
    RQ's three INFO lines per job are not printed."""
    env = {"TWILIO_ACCOUNT_SID": simulator.account_sid, "TWILIO_AUTH_TOKEN": simulator.auth_token,
           "TWILIO_INSIGHTS_BASE_URL": simulator.url, "ANALYSIS_DELAY_SECONDS": "0"}
    app = create_app(make_settings(redis_server.url, **env), redis=redis)
    sid = simulator.add_call("advanced-features-off")
    params = callback_params(sid, AccountSid=simulator.account_sid, CallStatus="completed")
    assert Callbacks(app.test_client()).post(params, token=simulator.auth_token).status_code == 204
    process = worker(settings_env(redis_server.url, **env), "--concurrency", "1").start()
    try:
        failed_registry = queue(ANALYSIS_QUEUE, redis).failed_job_registry
        # RQ logs the failure (job_failed) a round trip before it records it in the registry.
        process.wait_for(lambda: bool(process.events("job_failed"))
                         and analysis_job_id(sid) in failed_registry, timeout=30)
        [failed] = process.events("job_failed")
        assert failed["job_id"] == analysis_job_id(sid)
        assert process.events("analysis_failed")
        assert "Traceback" not in process.output
        assert "Job OK" not in process.output and "result is kept" not in process.output
        job = Job.fetch(analysis_job_id(sid), connection=redis, serializer=JSONSerializer)
        assert job.get_status() == "failed"
        assert process.exit_code_after_sigterm(10) == 0
    finally:
        process.close()


def test_the_default_worker_runs_four_processes_and_replaces_one_that_dies(redis_server) -> None:
    """``python -m workers.worker`` runs four worker processes; one killed is started again,
    and one SIGTERM still stops them all with exit code 0."""
    process = worker(settings_env(redis_server.url), "--name", "pool").start()
    try:
        process.wait_for(lambda: len(process.events("worker_listening")) == 4, timeout=60)
        names = {line["worker"] for line in process.events("worker_listening")}
        assert names == {"pool-1", "pool-2", "pool-3", "pool-4"}
        victim = next(int(p) for p in os.listdir("/proc") if p.isdigit() and _child_of(
            int(p), process.proc.pid))  # type: ignore[union-attr]
        os.kill(victim, signal.SIGKILL)
        process.wait_for(lambda: bool(process.events("worker_process_died")), timeout=30)
        process.wait_for(lambda: len(process.events("worker_listening")) == 5, timeout=60)
        assert process.exit_code_after_sigterm(15) == 0
    finally:
        process.close()


def _child_of(pid: int, parent: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1]) == parent
    except OSError:
        return False
