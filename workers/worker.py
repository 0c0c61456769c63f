"""``python -m workers.worker``: an RQ worker that also runs RQ's scheduler.

Listens on the delivery and analysis queues (deliveries first, so that under
overload finished alerts still go out) with the JSON serializer. Jobs run in the
worker's own process (RQ's ``SimpleWorker``): forking a work horse per job cost
20-25 CPU ms a job, three times the job itself, and two forking workers could not
keep up with 50 calls a second on two cores (bench/README.md, "End to end"). A job
that kills its process takes the worker with it; the platform restarts the worker
and the liveness clean-up retries the job. ``--fork`` restores RQ's forking worker
(``HerokuWorker`` when ``DYNO`` is set) for isolation. The maintenance interval is short so that, when
the worker holding the scheduler lock dies, another takes it over within about a
quarter of a minute and scheduled jobs keep running (RQ's default is 10 minutes); a
lock left by a scheduler that stopped beating is freed first (``scheduler_locks``), and
jobs whose worker stopped beating are retried within about half a minute (``liveness``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import redis as redis_lib
import structlog
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import HerokuWorker, SimpleWorker

# Imported here, once, so every forked work horse inherits the job code and its
# dependencies (slack_sdk alone costs ~145 ms) instead of importing them per job:
# 4x fewer CPU ms per analysis and per delivery (bench/README.md).
import workers.jobs  # noqa: F401
from service.logs import configure_logging
from service.settings import Settings, settings_or_exit
from workers import context
from workers.intake_mover import IntakeMover, move_due_calls
from workers.liveness import Heartbeat, recover_orphaned_jobs
from workers.queues import ANALYSIS_QUEUE, DELIVERY_QUEUE, QUEUES, queue, requeue_job_in_hand
from workers.scheduler_locks import release_stale_scheduler_locks
from workers.shutdown import StopsCleanly, StopSignal

MAINTENANCE_INTERVAL_S = 15
WORKER_TTL_S = 35

log = structlog.get_logger()


class _RecoversFromDeadWorkers(StopsCleanly):
    """Beats a liveness key and moves due calls from the intake; in maintenance, frees
    what dead workers and schedulers held. Stops cleanly on SIGTERM (``shutdown``)."""

    _heartbeat: Heartbeat | None = None
    _intake: IntakeMover | None = None
    #: (queue, job id) of the job being executed; left set when Redis fails it mid-way.
    job_in_hand: tuple[str, str] | None = None

    def register_birth(self) -> None:
        super().register_birth()
        self._heartbeat = Heartbeat(self.connection, self.name).start()
        self._intake = IntakeMover(self.connection).start()

    def register_death(self) -> None:
        self.stop_helpers()
        super().register_death()

    def stop_helpers(self) -> None:
        """Stop the liveness beat and the intake mover (idempotent)."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self._intake is not None:
            self._intake.stop()

    def abandon(self) -> None:
        """Let go of everything this worker started, after Redis failed it: RQ's teardown
        stops at the first Redis error, so its beat (which would keep its jobs from being
        recovered), its intake mover and its pub/sub thread (which retries forever) would
        otherwise outlive it, one set per outage."""
        self.stop_helpers()
        thread = self.pubsub_thread
        if thread is not None:
            thread.stop()
            with contextlib.suppress(redis_lib.RedisError, OSError):
                self.pubsub.close()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, except that a lost connection does not raise from it: RQ beats
        right after popping a job, and a raise there would drop the job before it is in
        hand (``job_in_hand``); the next Redis call meets the outage anyway."""
        try:
            super().heartbeat(timeout, pipeline)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError):
            if pipeline is not None:
                raise
            log.warning("worker_heartbeat_failed", worker=self.name)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run one job, held as ``job_in_hand`` until RQ is done with it; afterwards its log
        context (job id, call, alert) is cleared, so the worker's own lines about the next
        job do not carry this one's ids."""
        self.job_in_hand = (queue.name, job.id)
        try:
            super().execute_job(job, queue)
        finally:
            structlog.contextvars.clear_contextvars()
        self.job_in_hand = None

    def run_maintenance_tasks(self) -> None:
        release_stale_scheduler_locks(self.connection, self.queue_names())
        recover_orphaned_jobs(self.connection, self.queues)
        super().run_maintenance_tasks()


class CallwatchWorker(_RecoversFromDeadWorkers, Worker):
    """RQ's forking worker (a work horse per job)."""


class CallwatchHerokuWorker(_RecoversFromDeadWorkers, HerokuWorker):
    """RQ's Heroku worker: a dyno's SIGTERM stops the running job cleanly for a retry."""


class CallwatchSimpleWorker(_RecoversFromDeadWorkers, SimpleWorker):
    """Jobs in the worker's own process: the default (``--fork`` for the others)."""


def build_worker(settings: Settings, redis: redis_lib.Redis, *, simple: bool = True,
                 name: str | None = None) -> _RecoversFromDeadWorkers:
    """In-process (``simple``, the default), else forking: Heroku's or RQ's."""
    cls: type[_RecoversFromDeadWorkers]
    if simple:
        cls = CallwatchSimpleWorker
    elif os.environ.get("DYNO"):
        cls = CallwatchHerokuWorker
    else:
        cls = CallwatchWorker
    return cls(
        [queue(name_, redis) for name_ in (DELIVERY_QUEUE, ANALYSIS_QUEUE)],
        connection=redis,
        serializer=JSONSerializer,
        name=name,
        worker_ttl=WORKER_TTL_S,
        maintenance_interval=MAINTENANCE_INTERVAL_S,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--simple", action="store_true",
                      help="run each job in this process (the default)")
    mode.add_argument("--fork", action="store_true",
                      help="fork a work horse per job (RQ's Worker; HerokuWorker on Heroku)")
    parser.add_argument("--name", help="worker name (default: RQ's)")
    args = parser.parse_args(argv)
    settings = settings_or_exit(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    redis = settings.redis()
    context.configure(settings, redis)
    return run(settings, redis, burst=args.burst, simple=not args.fork, name=args.name)


def run(settings: Settings, redis: redis_lib.Redis, *, burst: bool = False, simple: bool = True,
        name: str | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Work until asked to stop; when Redis goes away under RQ, wait for it and start again.

    RQ's worker quits on a ``ConnectionError`` raised while it watches a running job,
    and a process that exits is restarted by the platform only after a cool-off (up
    to 20 minutes on Heroku after repeated crashes). So the worker outlives Redis
    outages itself. Jobs registered as started are recovered by the liveness clean-up;
    the job it was running, if Redis lost track of it, it puts back itself.
    """
    restarts = 0
    stop = StopSignal()
    in_hand: tuple[str, str] | None = None
    while True:
        stop.install()  # ours until RQ's loop installs its handlers, and again once it is left
        # A restarted worker needs a new name: the dead one's may still be registered.
        worker_name = f"{name}-{restarts}" if name and restarts else name
        worker = None
        try:
            worker = build_worker(settings, redis, simple=simple, name=worker_name)  # asks Redis
            worker.early_stop = stop
            worker_name = worker.name
            log.info("worker_starting", queues=list(QUEUES), worker=worker.name)
            if burst:
                move_due_calls(redis)  # no mover thread lives long enough in a burst
            worker.work(with_scheduler=True, burst=burst, logging_level=settings.log_level)
            if burst or worker.stop_signalled:
                return 0
            log.warning("worker_stopped_unexpectedly", worker=worker.name)
        except redis_lib.RedisError as error:
            log.error("worker_lost_redis", worker=worker_name, error=type(error).__name__)
            if worker is not None:
                worker.abandon()
        if worker is not None:  # RQ's loop may also end "normally" after a Redis error
            in_hand = in_hand or worker.job_in_hand
        stop.install()
        if not wait_for_redis(redis, stopping=lambda: stop.requested, sleep=sleep):
            log.info("worker_stopped_waiting_for_redis", worker=worker_name)
            if in_hand is not None:  # nothing can put it back now: say which it was
                log.error("job_in_hand_not_requeued", queue=in_hand[0], job_id=in_hand[1])
            return 0
        if in_hand is not None:
            with contextlib.suppress(redis_lib.RedisError):  # gone again: after the next wait
                requeue_job_in_hand(redis, *in_hand)
                in_hand = None
        restarts += 1


def wait_for_redis(redis: redis_lib.Redis, *, stopping: Callable[[], bool] = lambda: False,
                   sleep: Callable[[float], None] = time.sleep, first_wait_s: float = 1.0,
                   max_wait_s: float = 30.0, step_s: float = 0.25) -> bool:
    """True once Redis answers PING, trying again after 1 s, 2 s, 4 s ... (at most 30 s);
    False as soon as ``stopping()`` says so (checked every ``step_s``)."""
    wait = first_wait_s
    while not stopping():
        try:
            redis.ping()
            log.info("redis_back")
            return True
        except redis_lib.RedisError:
            waited = 0.0
            while waited < wait and not stopping():
                sleep(step_s)
                waited += step_s
            wait = min(wait * 2, max_wait_s)
    return False


if __name__ == "__main__":
    raise SystemExit(main())
