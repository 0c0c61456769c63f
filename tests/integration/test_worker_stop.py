"""A worker stops within 25 s of SIGTERM whatever its job is doing, and the job it was
running is put back for another worker, not lost (real worker processes, real Redis)."""

from __future__ import annotations

import time

import redis as redis_lib
from rq.job import Job

from devtools.processes import settings_env, worker
from devtools.redis_server import RedisServer
from workers.queues import ANALYSIS_JOB_TIMEOUT_S, ANALYSIS_QUEUE, CRASH_RETRY, queue

#: The platform's patience we must stay inside (Heroku's is 30 s).
STOP_WITHIN_S = 25


def busy_job(seconds: float) -> str:
    """A job that keeps working past any grace (a slow Insights fetch, say)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
    return "done"


def test_sigterm_during_a_long_job_stops_the_worker_and_puts_the_job_back(
        redis_server: RedisServer, redis: redis_lib.Redis) -> None:
    """SIGTERM while a job runs for minutes: the worker (a pool of two processes, as
    deployed) exits 0 within 25 s, and the job is back at the front of its queue, neither
    failed nor a retry spent, so the next worker runs it."""
    q = queue(ANALYSIS_QUEUE, redis)
    job = q.enqueue(f"{__name__}.busy_job", 120, job_id="analyze-busy",
                    job_timeout=ANALYSIS_JOB_TIMEOUT_S, retry=CRASH_RETRY)
    process = worker(settings_env(redis_server.url), "--concurrency", "2").start()
    try:
        process.wait_for(lambda: job.id in q.started_job_registry, timeout=30)
        assert process.exit_code_after_sigterm(STOP_WITHIN_S) == 0
        assert q.job_ids == [job.id]
        assert job.id not in q.started_job_registry and job.id not in q.failed_job_registry
        back = Job.fetch(job.id, connection=redis, serializer=q.serializer)
        assert back.get_status() == "queued" and back.retries_left == CRASH_RETRY.max
        assert process.events("job_put_back_on_stop")
    finally:
        process.close()


def test_sigterm_stops_a_worker_paused_by_rq_suspend(
        redis_server: RedisServer, redis: redis_lib.Redis) -> None:
    """``rq suspend`` paused the deployment, then the platform stops it: one SIGTERM ends the
    worker (a pool of two) with exit 0 within 25 s, as when it is not paused."""
    from rq.suspension import suspend
    from rq.worker import Worker

    suspend(redis)  # a worker looks before its first job (and between jobs), as RQ's does
    process = worker(settings_env(redis_server.url), "--concurrency", "2").start()
    try:
        process.wait_for(lambda: [w.get_state() for w in Worker.all(connection=redis)]
                         == ["suspended", "suspended"], timeout=30)
        assert process.exit_code_after_sigterm(STOP_WITHIN_S) == 0
    finally:
        process.close()
