"""What this changes in RQ's scheduler, and why: a crashed scheduler process ends with
one JSON log line, and a worker that did not win the scheduler's lock holds no Redis
connection for it.

**The crash.** RQ runs its scheduler in a forked process whose target,
``rq.scheduler.run``, logs any exception with its traceback (``rq.scheduler``: one JSON
line through ``service.logs``) and then re-raises it. ``multiprocessing`` then prints the
same traceback again, raw, on stderr (``BaseProcess._bootstrap``): some 60 lines of plain
text in a log that is otherwise one JSON object a line. So the process target becomes
``run_scheduler``: RQ's own ``run``, then, after it has logged the exception,
``SystemExit(1)``, which ``multiprocessing`` turns into exit code 1 quietly. The exit
code, and what the worker does about a dead scheduler, stay RQ's. Relies on
``RQScheduler.start`` looking up the module-level ``run`` when it forks.

**The idle connection.** Every worker process builds an ``RQScheduler`` and tries its
lock at start-up and at each maintenance; only one process in the deployment wins it.
The scheduler object builds a Redis client of its own (a pool outside the worker's
bounded one), and in every process that lost, that client's connection then stays open
and idle: one connection per worker process, a fifth of Heroku Key-Value Store mini's 20
across a default formation. ``ClosesIdleSchedulerConnection`` closes it after each
attempt that did not win (RQ's client reconnects at the next attempt, every
``MAINTENANCE_INTERVAL_S``). Relies on ``BaseWorker.scheduler`` and
``RQScheduler.acquired_locks`` and ``.connection``.

Both are pinned by ``tests/integration/test_json_logs.py`` and
``tests/integration/test_redis_budget.py``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis as redis_lib
import rq.scheduler
from rq.worker import BaseWorker

_rq_run = rq.scheduler.run


def run_scheduler(scheduler: Any) -> None:
    """RQ's scheduler process target, exiting with code 1 instead of re-raising."""
    try:
        _rq_run(scheduler)
    except Exception:  # RQ logged it with its traceback just now
        raise SystemExit(1) from None


def install() -> None:
    """Make RQ fork its scheduler into ``run_scheduler`` (once per process, idempotent)."""
    rq.scheduler.run = run_scheduler


class ClosesIdleSchedulerConnection(BaseWorker):
    """After maintenance (where RQ retries the scheduler's lock), a worker that does not
    hold the lock closes the scheduler object's connection."""

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
