"""The worker process: moves due calls from the intake and runs their analysis."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import redis as redis_lib
from rq.job import Job
from rq.serializers import JSONSerializer

from devtools.processes import Process, settings_env, worker
from devtools.redis_server import RedisServer
from devtools.simulator.server import SimulatorServer
from devtools.web_client import Callbacks, callback_params, make_settings
from service.web import create_app
from workers.queues import ANALYSIS_QUEUE, analysis_job_id, queue
from workers.rq_adaptations.job_in_hand import requeue_job_in_hand
from workers.rq_adaptations.pop_wake import POP_WAIT_S


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
        # a finished job is not kept: the call's intake record de-duplicates callbacks
        process.wait_for(lambda: not Job.exists(analysis_job_id(sid), connection=redis), timeout=10)
        [started] = process.events("analysis_started")
        assert started["call_sid"] == sid
        assert started["status"] == "completed"
        assert started["to"] != "+14155550123"  # the number is masked in logs
        assert started["to"].endswith("23")
        assert "+14155550123" not in process.output
    finally:
        process.close()


def _sigterm_and_wait(process: Process, timeout: float = 15) -> int:
    assert process.proc is not None
    os.kill(process.proc.pid, signal.SIGTERM)
    try:
        return process.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {timeout} s after SIGTERM:\n{process.output[-4000:]}") from None


def test_sigterm_stops_an_idle_worker_cleanly(redis_server) -> None:
    """SIGTERM (Heroku's and Kubernetes' stop) ends an idle worker at once, exit code 0."""
    process = worker(settings_env(redis_server.url)).start()
    try:
        process.wait_for(lambda: bool(process.events("worker_listening")), timeout=30)
        assert _sigterm_and_wait(process) == 0  # not killed: it exited by itself
        assert not process.events("worker_stopped_unexpectedly")
    finally:
        process.close()


def _blocked_pops(redis: redis_lib.Redis) -> int:
    """Worker connections blocked in a pop for jobs now."""
    return sum(1 for client in redis.client_list(_type="normal")
               if client.get("name", "").startswith("callwatch-worker-") and "b" in client["flags"])


def _unblocks(redis: redis_lib.Redis) -> int:
    return int(redis.info("commandstats").get("cmdstat_client|unblock", {}).get("calls", 0))


def test_sigterm_ends_the_pop_an_idle_worker_waits_in(redis_server, redis: redis_lib.Redis) -> None:
    """An idle worker waits for jobs in pops of ``POP_WAIT_S``; SIGTERM ends the pop in
    progress (``CLIENT UNBLOCK``) rather than waiting for it to run out."""
    process = worker(settings_env(redis_server.url), "--concurrency", "1").start()
    try:
        process.wait_for(lambda: _blocked_pops(redis) == 1, timeout=30)
        before = _unblocks(redis)
        assert _sigterm_and_wait(process) == 0
        assert _unblocks(redis) == before + 1
        assert not process.events("pop_wake_unavailable")
    finally:
        process.close()


def test_a_redis_that_refuses_client_unblock_still_lets_an_idle_worker_stop(
        redis_server, redis: redis_lib.Redis) -> None:
    """A Redis user without ``CLIENT LIST`` and ``CLIENT UNBLOCK`` (an ACL without @admin):
    the worker says so once and stops when its pop runs out, exit code 0."""
    redis.acl_setuser("limited", enabled=True, passwords=["+pw"], keys=["~*"], channels=["&*"],
                      commands=["+@all", "-client|list", "-client|unblock"], reset=True)
    url = redis_server.url.replace("redis://", "redis://limited:pw@", 1)
    process = worker(settings_env(url), "--concurrency", "1").start()
    try:
        process.wait_for(lambda: _blocked_pops(redis) == 1, timeout=30)
        assert _sigterm_and_wait(process, timeout=POP_WAIT_S + 15) == 0
        [refused] = process.events("pop_wake_unavailable")
        assert "client|list" in refused["error"]
    finally:
        process.close()
        redis.acl_deluser("limited")


def test_a_redis_that_refuses_client_setname_still_serves_the_worker(
        redis_server, redis: redis_lib.Redis) -> None:
    """A proxy or an ACL that refuses ``CLIENT SETNAME``: the worker says so once, works
    with unnamed connections (its jobs run) and stops on SIGTERM, exit code 0."""
    redis.acl_setuser("unnamed", enabled=True, passwords=["+pw"], keys=["~*"], channels=["&*"],
                      commands=["+@all", "-client|setname"], reset=True)
    url = redis_server.url.replace("redis://", "redis://unnamed:pw@", 1)
    process = worker(settings_env(url), "--concurrency", "1").start()
    try:
        process.wait_for(lambda: bool(process.events("worker_listening")), timeout=30)
        job = queue(ANALYSIS_QUEUE, redis).enqueue("builtins.len", [1, 2], result_ttl=0)
        process.wait_for(lambda: not Job.exists(job.id, connection=redis), timeout=30)
        assert _sigterm_and_wait(process, timeout=POP_WAIT_S + 15) == 0
        [refused] = process.events("connection_name_refused")
        assert "client|setname" in refused["error"]
        assert not process.events("worker_stopped_unexpectedly")
    finally:
        process.close()
        redis.acl_deluser("unnamed")


def test_sigterm_while_the_worker_starts_stops_it_cleanly(redis_server) -> None:
    """A stop that arrives before RQ's loop listens for signals still ends the worker with
    exit code 0, and it takes no job first."""
    process = worker(settings_env(redis_server.url)).start()
    try:
        process.wait_for(lambda: bool(process.events("worker_starting")), timeout=30)
        assert _sigterm_and_wait(process) == 0
        assert not process.events("worker_stopped_unexpectedly")
    finally:
        process.close()


def test_a_worker_started_before_redis_waits_for_it_then_works() -> None:
    """A worker whose Redis is not up yet (a deploy racing its add-on) neither crashes nor
    needs a restart: it starts listening once Redis answers."""
    server = RedisServer()  # its port, not yet listening
    process = worker(settings_env(server.url)).start()
    try:
        process.wait_for(lambda: bool(process.events("worker_waiting_for_redis")), timeout=30)
        with server:
            process.wait_for(lambda: bool(process.events("worker_listening")), timeout=30)
            assert _sigterm_and_wait(process) == 0
    finally:
        process.close()


def test_sigterm_while_waiting_for_redis_stops_the_worker_cleanly() -> None:
    """A worker waiting for an unreachable Redis stops on SIGTERM within a second, exit code 0."""
    process = worker(settings_env(RedisServer().url)).start()  # nothing listens there
    try:
        process.wait_for(lambda: bool(process.events("worker_waiting_for_redis")), timeout=30)
        time.sleep(0.5)  # inside the back-off between PINGs
        assert _sigterm_and_wait(process, timeout=5) == 0
        assert process.events("worker_stopped_waiting_for_redis")
    finally:
        process.close()


def test_a_job_in_hand_is_put_back_only_when_nothing_else_will(redis: redis_lib.Redis) -> None:
    """The job a worker was running when Redis failed it goes back to the front of its queue
    only when it is in no queue and RQ never marked it started (popped, never registered:
    no clean-up would find it). Started, queued, finished or vanished jobs are left alone
    (a registered job RQ never marked started: ``test_worker_redis_loss.py``)."""
    q = queue(ANALYSIS_QUEUE, redis)
    for job_id in ("limbo", "registered", "queued", "finished"):
        q.enqueue("workers.jobs.analyze_call", {}, job_id=job_id)  # never run here
    redis.lrem(q.key, 0, "limbo")  # popped by a worker, never registered
    redis.lrem(q.key, 0, "registered")
    # as a worker registers a started job: <job id>:<execution id>, scored by its deadline
    redis.zadd(q.started_job_registry.key, {"registered:e1": time.time() + 60})
    Job.fetch("registered", connection=redis, serializer=JSONSerializer).set_status("started")
    finished = Job.fetch("finished", connection=redis, serializer=JSONSerializer)
    redis.lrem(q.key, 0, "finished")
    finished.set_status("finished")

    assert requeue_job_in_hand(redis, ANALYSIS_QUEUE, "limbo") is True
    assert q.job_ids[0] == "limbo"
    for job_id in ("registered", "queued", "finished", "never-existed"):
        assert requeue_job_in_hand(redis, ANALYSIS_QUEUE, job_id) is False
    assert sorted(q.job_ids) == ["limbo", "queued"]

