"""A job Redis lost while a worker was starting it.

RQ starts a job in two transactions: ``prepare_execution`` adds the execution to the
queue's started registry, then ``prepare_job_execution`` sets the job's status to
``started`` and its ``worker_name``. Redis going away between the two (the Redis drill's
fault: ``SHUTDOWN SAVE``, then a restart with the data) leaves the job in the started
registry, ``queued``, with no worker name: neither the liveness recovery (which needs the
worker's name) nor RQ's clean-up (which retries only ``started`` jobs and drops the
others' entries) ever runs it again. callwatch's in-process worker starts a job in one
transaction (``workers.rq_adaptations.one_start``), so for it the last moment a Redis
failure can leave a job half-started is gone; the job it holds when Redis fails before
that transaction is in no queue and no registry. RQ's forking workers (``--fork``) and
jobs an older release started still reach the registered-but-not-started state, which
``requeue_job_in_hand`` and ``recover_orphaned_jobs`` put back (tested below on that state).
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta
from typing import Any

import redis as redis_lib
from rq import SimpleWorker
from rq.executions import prepare_execution
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import now

from devtools.redis_server import RedisServer
from workers.queues import ANALYSIS_QUEUE, CRASH_RETRY, queue, schedule_unique
from workers.rq_adaptations.job_in_hand import requeue_job_in_hand
from workers.rq_adaptations.liveness import ALIVE_TTL_S, alive_key, recover_orphaned_jobs
from workers.rq_adaptations.restart import run
from workers.rq_adaptations.shutdown import StopSignal
from workers.worker import build_worker

#: Job ids the recording job ran, and the stop it requests once it has run.
ran: list[str] = []
stop = StopSignal()


def record_run(job_id: str) -> str:
    """A job: note that it ran and ask the worker to stop."""
    ran.append(job_id)
    stop.record(signal.SIGTERM)
    return "ok"


def test_a_job_redis_lost_just_before_its_start_transaction_runs_once_redis_is_back() -> None:
    """Drill 1's lost call, on purpose, at the last moment the worker holds a job Redis knows
    nothing of: Redis stops with ``SHUTDOWN SAVE`` as the worker is about to start the
    popped job (its one start transaction), and comes back with its data while the worker
    waits; the worker that held the job puts it back and runs it, once."""
    ran.clear()
    stop.received = None
    job_id = "analyze-CAlostbeforeitsstart"
    with RedisServer() as server:
        redis = redis_lib.Redis.from_url(server.url)
        schedule_unique(redis, ANALYSIS_QUEUE, f"{__name__}.record_run", (job_id,),
                        job_id=job_id, delay_s=0, timeout_s=60)
        down = threading.Event()
        seen_after_restart: list[tuple[str, int, int]] = []

        def build(name: str | None, stop_: StopSignal) -> Any:
            worker = build_worker(redis, name=name, stop=stop_)
            prepare = worker.prepare_execution

            def redis_goes_away_first(job: Job) -> Any:
                # The job is popped and in hand; nothing of its start is written yet.
                # Redis stops here, saving what it has, as in drill 1.
                if not down.is_set():
                    down.set()
                    redis_lib.Redis.from_url(server.url).shutdown(save=True)
                    server.stop()
                return prepare(job)

            worker.prepare_execution = redis_goes_away_first  # type: ignore[method-assign]
            return worker

        def sleep(seconds: float) -> None:  # the worker waits for Redis: it comes back
            if down.is_set() and not _listening(server):
                server.start()
                back = redis_lib.Redis.from_url(server.url)
                q = queue(ANALYSIS_QUEUE, back)
                seen_after_restart.append((
                    Job.fetch(job_id, connection=back, serializer=JSONSerializer).get_status(),
                    back.zcard(q.started_job_registry.key), len(q.job_ids)))
                back.close()
            time.sleep(seconds)

        watchdog = threading.Timer(30, stop.record, args=(signal.SIGTERM,))
        watchdog.start()
        try:
            assert run(redis, build, name="lost-before-start", stop=stop, sleep=sleep) == 0
        finally:
            watchdog.cancel()
        assert down.is_set(), "the worker never started the job"
        # Redis came back with the job in no queue and no registry: only the hand held it.
        assert seen_after_restart == [(JobStatus.QUEUED, 0, 0)]
        assert ran == [job_id]
        redis.close()


def _listening(server: RedisServer) -> bool:
    try:
        return bool(redis_lib.Redis(port=server.port, socket_connect_timeout=0.2,
                                    retry=None).ping())
    except redis_lib.ConnectionError:
        return False


def test_a_job_in_hand_registered_but_never_started_goes_back_to_its_queue(
        redis: redis_lib.Redis) -> None:
    """``requeue_job_in_hand``: a job in the started registry that RQ never marked started
    goes back to the front of its queue, without its registry entry (whose expiry would
    otherwise retry the re-run job, or drop it); a started one is left to the liveness
    recovery."""
    q = queue(ANALYSIS_QUEUE, redis)
    for job_id in ("registered", "started", "next"):
        q.enqueue(f"{__name__}.record_run", job_id, job_id=job_id)  # never run here
    for job_id in ("registered", "started"):
        redis.lrem(q.key, 0, job_id)
        # as RQ's prepare_execution registers it: <job id>:<execution id>, by its deadline
        redis.zadd(q.started_job_registry.key, {f"{job_id}:e1": time.time() + 60})
    Job.fetch("started", connection=redis, serializer=JSONSerializer).set_status(
        JobStatus.STARTED)

    assert requeue_job_in_hand(redis, ANALYSIS_QUEUE, "registered") is True
    assert requeue_job_in_hand(redis, ANALYSIS_QUEUE, "started") is False
    assert q.job_ids == ["registered", "next"]
    members = redis.zrange(q.started_job_registry.key, 0, -1)
    assert members == [b"started:e1"]


def test_a_job_registered_by_a_worker_that_died_before_starting_it_goes_back(
        redis: redis_lib.Redis) -> None:
    """``recover_orphaned_jobs``: a job RQ registered as started (``prepare_execution``) but
    never marked started, because its worker died in between, goes back to the front of its
    queue once that worker stops beating, once however many workers recover it; the same
    state under a live worker is left alone."""
    q = queue(ANALYSIS_QUEUE, redis)
    for job_id in ("dead-workers", "live-workers", "next"):
        q.enqueue(f"{__name__}.record_run", job_id, job_id=job_id)  # never run here
    for job_id, name in (("dead-workers", "gone"), ("live-workers", "alive")):
        redis.lrem(q.key, 0, job_id)  # popped
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        prepare_execution(SimpleWorker([q], connection=redis, name=name), job)  # RQ's first step
    redis.set(alive_key("alive"), "1", ex=ALIVE_TTL_S)
    later = timedelta(seconds=ALIVE_TTL_S + 1)  # past the grace a new execution gets

    assert recover_orphaned_jobs(redis, [q], clock=lambda: now() + later) == ["dead-workers"]
    assert recover_orphaned_jobs(redis, [q], clock=lambda: now() + later) == []
    assert q.job_ids == ["dead-workers", "next"]
    assert [m.decode().split(":")[0] for m in redis.zrange(q.started_job_registry.key, 0, -1)] \
        == ["live-workers"]


def test_rq_drops_the_expired_entry_of_a_job_it_never_marked_started(
        redis: redis_lib.Redis) -> None:
    """Pin (``workers.rq_adaptations.put_back``): RQ registers the execution before it marks the
    job started, and its clean-up of an expired entry retries only started jobs; a
    registered, still queued job's entry is dropped and the job is in no queue."""
    q = queue(ANALYSIS_QUEUE, redis)
    job = q.enqueue(f"{__name__}.record_run", "x", job_id="never-started", retry=CRASH_RETRY)
    redis.lrem(q.key, 0, job.id)
    prepare_execution(SimpleWorker([q], connection=redis, name="w"), job)
    assert job.get_status(refresh=True) == JobStatus.QUEUED and not job.worker_name
    q.started_job_registry.cleanup(timestamp=time.time() + 3600)
    assert redis.zcard(q.started_job_registry.key) == 0
    assert job.get_status(refresh=True) == JobStatus.QUEUED and q.job_ids == []
