"""A unique enqueue in one round trip: the queue's registration rides in RQ's own script.

What this changes in RQ, and why: RQ's ``Queue.enqueue_job`` first adds the queue to
``rq:queues`` (the set ``rq info``, ``Queue.all()`` and the dashboards list queues from)
in a transaction of its own, ``MULTI SADD EXEC``, then, for a ``unique`` job, runs its Lua
script that checks the job id and saves and pushes the job (``EVALSHA``); a pipeline
passed in does not help, the script runs outside it. Every callwatch enqueue is unique
(``workers.queues``): an analysis for every call the intake mover moves, a delivery for
every alert, so two round trips and four commands where one of each does
(``bench/e2e.py``). Here a unique enqueue runs one script: ``SADD`` then RQ's own script
text (``rq.scripts.UNIQUE_ENQUEUE_SCRIPT``, unchanged), with RQ's own preparation of the
job and its own arguments, so the job, the queue and ``rq:queues`` end as RQ leaves them
(the queue is registered even when the id is taken, as RQ does), and a taken id raises
RQ's ``DuplicateJobError``. Nothing is cached: the queue is registered on every enqueue,
so a deleted ``rq:queues`` (``Queue.delete``, a flushed Redis) is filled again as with RQ.

An enqueue that is not unique, or that has dependencies, a rate limit, a pipeline of the
caller's or a synchronous queue, is RQ's. A scheduled unique job (``enqueue_at``) is RQ's
too: its script registers the queue already.

Pins (``tests/integration/test_worker_rq_pins.py``):
``test_rq_registers_the_queue_apart_from_its_unique_enqueue_script``,
``test_a_one_trip_unique_enqueue_leaves_what_rqs_leaves``.
"""

from __future__ import annotations

from typing import Any

from rq.exceptions import DuplicateJobError
from rq.job import Job
from rq.queue import Queue
from rq.scripts import UNIQUE_ENQUEUE_SCRIPT, _build_hset_args

from service.redis_scripts import script

#: KEYS[3] is ``rq:queues``; KEYS[2] the queue, RQ's script's own; the rest is RQ's script.
_REGISTER_AND_ENQUEUE = "redis.call('SADD', KEYS[3], KEYS[2])\n" + UNIQUE_ENQUEUE_SCRIPT


class OneTripUniqueQueue(Queue):
    """RQ's queue, whose unique enqueue is one round trip."""

    def enqueue_job(self, job: Job, pipeline: Any = None, at_front: bool = False,
                    unique: bool = False) -> Job:
        if (not unique or not job._id or pipeline is not None or job._dependency_ids
                or job.has_rate_limit or not self._is_async):
            return super().enqueue_job(job, pipeline=pipeline, at_front=at_front, unique=unique)
        # RQ's enqueue_job and _enqueue_async_job for this case, with the queue's SADD in
        # the script: RQ's setup_dependencies does nothing for a job without dependencies.
        job.origin = self.name
        self._prepare_for_queue(job)
        ttl = job.ttl if job.ttl is not None else -1
        enqueued = script(self.connection, _REGISTER_AND_ENQUEUE)(
            keys=[job.key, self.key, self.redis_queues_keys],
            args=[job.id, "L" if at_front else "R", ttl, *_build_hset_args(job)])
        if enqueued == 0:
            raise DuplicateJobError(f"Job with ID '{job.id}' already exists")
        return job
