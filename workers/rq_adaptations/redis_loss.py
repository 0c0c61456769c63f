"""Leaving RQ's loop when Redis fails, quietly and at once.

What this changes in RQ, and why: RQ's ``work()`` ends on any unexpected exception
with a traceback ("found an unhandled exception, quitting"), and a Redis error met
while it checks for suspension, heartbeats or runs a job's bookkeeping is such an
exception; during an outage or with a full Redis (``OOM command not allowed``) that
was a traceback per attempt. Here every Redis error raised from RQ's loop becomes
:class:`RedisLost`, a ``SystemExit``, which RQ's loop re-raises without logging;
``workers.rq_adaptations.restart`` catches it, lets go of what the worker started, waits (bounded,
backed off, interruptible) and starts a fresh worker.
"""

from __future__ import annotations

from typing import Any

import redis as redis_lib
from rq.job import Job
from rq.queue import Queue
from rq.worker import BaseWorker


class RedisLost(SystemExit):
    """Redis failed the worker's loop; ``error`` is what it raised."""

    def __init__(self, error: redis_lib.RedisError) -> None:
        super().__init__(1)
        self.error = error


class LeavesOnRedisError(BaseWorker):
    """Turns Redis errors in RQ's loop into :class:`RedisLost`."""

    def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                     max_idle_time: int | None = None) -> tuple[Job, Queue] | None:
        try:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        except redis_lib.RedisError as error:
            raise RedisLost(error) from error

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        except redis_lib.RedisError as error:
            raise RedisLost(error) from error

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except redis_lib.RedisError as error:
            raise RedisLost(error) from error

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except redis_lib.RedisError as error:
            raise RedisLost(error) from error

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        try:
            super().heartbeat(timeout, pipeline)
        except redis_lib.RedisError as error:
            if pipeline is not None:
                raise
            raise RedisLost(error) from error
