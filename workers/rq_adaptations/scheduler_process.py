"""What this changes in RQ's scheduler, and why: a crashed scheduler process ends with
one JSON log line, a worker that did not win the scheduler's lock holds no Redis
connection for it, a worker's stop never waits on its scheduler for ever, and an idle
scheduler reads its queues' scheduled registries in one round trip a second.

**The crash.** RQ runs its scheduler in a forked process whose target,
``rq.scheduler.run``, logs any exception with its traceback (``rq.scheduler``: one JSON
line through ``service.logs``) and then re-raises it. ``multiprocessing`` then prints the
same traceback again, raw, on stderr (``BaseProcess._bootstrap``): some 60 lines of plain
text in a log that is otherwise one JSON object a line. So the process target becomes
``run_scheduler``: RQ's own ``run``, then, after it has logged the exception,
``SystemExit(1)``, which ``multiprocessing`` turns into exit code 1 quietly. The exit
code, and what the worker does about a dead scheduler, stay RQ's. Relies on
``RQScheduler.start`` looking up the module-level ``run`` when it forks.

**The reads.** Each second RQ's scheduler reads each of its queues' scheduled registries
for due jobs, a round trip each (a worker listens on three queues or more: deliveries,
each sink's line, analyses), even when none is due, which is most seconds. Here one
pipeline reads them all first (``enqueue_when_due``), and RQ's own
``enqueue_scheduled_jobs`` runs only when one has a job due. Relies on
``RQScheduler._scheduled_job_registries``, ``prepare_registries`` and ``acquired_locks``.

**The idle connection.** Every worker process builds an ``RQScheduler`` and tries its
lock at start-up and at each maintenance; only one process in the deployment wins it.
The scheduler object builds a Redis client of its own (a pool outside the worker's
bounded one), and in every process that lost, that client's connection then stays open
and idle: one connection per worker process, a fifth of Heroku Key-Value Store mini's 20
across a default formation. ``ClosesIdleSchedulerConnection`` closes it after each
attempt that did not win (RQ's client reconnects at the next attempt, every
``MAINTENANCE_INTERVAL_S``). Relies on ``BaseWorker.scheduler`` and
``RQScheduler.acquired_locks`` and ``.connection``.

**The stop.** At teardown RQ sends its scheduler process SIGTERM and joins it with no
deadline. A scheduler forked a moment before (a worker that had just taken the lock
over) still has its parent's SIGTERM handler, which only records a stop in the copy of
the worker: the scheduler never ends and neither did the worker (seen in a test: a
worker stopping right after ``watch_scheduler_locks`` started the scheduler). Here the
join waits ``SCHEDULER_STOP_S``, then the scheduler is killed (it holds nothing a kill
loses: its lock is released as stale by ``workers.rq_adaptations.scheduler_locks``).

Pinned by ``tests/integration/test_json_logs.py``, ``tests/integration/test_redis_budget.py``,
``tests/integration/test_scheduler_locks.py`` and
``tests/integration/test_worker_rq_pins.py::test_rq_scheduler_reads_each_registry_apart``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

import redis as redis_lib
import rq.scheduler
import structlog
from rq.utils import current_timestamp
from rq.worker import BaseWorker

#: How long a stopping worker waits for its scheduler process to end on SIGTERM.
SCHEDULER_STOP_S = 3.0

log = structlog.get_logger(__name__)

_rq_run = rq.scheduler.run


def run_scheduler(scheduler: Any) -> None:
    """RQ's scheduler process target, exiting with code 1 instead of re-raising, its
    scheduled registries read in one round trip a pass."""
    rq_enqueue = scheduler.enqueue_scheduled_jobs
    scheduler.enqueue_scheduled_jobs = lambda: enqueue_when_due(scheduler, rq_enqueue)
    try:
        _rq_run(scheduler)
    except Exception:  # RQ logged it with its traceback just now
        raise SystemExit(1) from None


def enqueue_when_due(scheduler: Any, enqueue: Callable[[], None]) -> bool:
    """Run ``enqueue`` (RQ's ``enqueue_scheduled_jobs``) if one of the scheduler's scheduled
    registries has a job due, read in one pipeline; True if it ran."""
    if not scheduler._scheduled_job_registries and scheduler.acquired_locks:
        scheduler.prepare_registries()
    registries = scheduler._scheduled_job_registries
    if registries:
        moment = current_timestamp()
        pipe = scheduler.connection.pipeline(transaction=False)
        for registry in registries:
            pipe.zrangebyscore(registry.key, 0, moment, start=0, num=1)
        if not any(pipe.execute()):
            return False
    enqueue()
    return True


def install() -> None:
    """Make RQ fork its scheduler into ``run_scheduler`` (once per process, idempotent)."""
    rq.scheduler.run = run_scheduler


class ClosesIdleSchedulerConnection(BaseWorker):
    """After maintenance (where RQ retries the scheduler's lock), a worker that does not
    hold the lock closes the scheduler object's connection; at teardown it stops its
    scheduler process within ``SCHEDULER_STOP_S``."""

    def stop_scheduler(self) -> None:
        process = self.scheduler._process if self.scheduler is not None else None
        if process is None or not process.pid or process.exitcode is not None:
            return  # none, or already reaped (its pid may belong to another process now)
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
        process.join(SCHEDULER_STOP_S)
        if process.is_alive():
            log.warning("scheduler_killed", pid=process.pid, waited_s=SCHEDULER_STOP_S)
            process.kill()
            process.join()

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        close_idle_scheduler_connection(self)


def close_idle_scheduler_connection(worker: BaseWorker) -> None:
    """Close the scheduler object's connection unless it holds a lock (also called when a
    process skips a maintenance pass: it tried the lock at start-up)."""
    scheduler = worker.scheduler
    if scheduler is not None and not scheduler.acquired_locks:
        with contextlib.suppress(redis_lib.RedisError, OSError):
            scheduler.connection.connection_pool.disconnect()
