"""Putting back the job a worker held when Redis failed it.

What this changes in RQ, and why: RQ takes a job off its queue and registers it as
started in later round trips; when Redis fails in between, the job is in no queue and
no registry, where none of RQ's clean-ups will ever find it. ``workers.rq_adaptations.dequeue`` holds
the job in hand from the pop until RQ is done with it; once Redis answers again,
``workers.rq_adaptations.restart`` calls :func:`requeue_job_in_hand`, which puts it back at the front
of its queue if nothing else will. A job that is queued, scheduled, ended or marked
started is left to RQ, its scheduler and the liveness recovery.

Starting a job takes RQ two transactions too: ``prepare_execution`` adds the execution
to the started registry, then ``prepare_job_execution`` marks the job ``started`` with
its worker's name. A job Redis lost between the two is in the started registry but
still ``queued``, with no worker name: the liveness recovery cannot tell whose it was,
and RQ's clean-up retries only ``started`` jobs (it drops the others' entries). So a
job in hand that RQ never marked started goes back to its queue as well, its started
entries removed. (callwatch's in-process worker starts a job in one transaction,
``workers.rq_adaptations.one_start``, so its jobs never wait in that state; a forking
worker's still can.) Running a job twice is safe anyway (same alert id; the delivery
ledger).
"""

from __future__ import annotations

import structlog
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer

from workers.queues import queue
from workers.rq_adaptations.dequeue import PromptDequeue
from workers.rq_adaptations.put_back import put_back, started_entries

log = structlog.get_logger(__name__)

_ENDED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED)


class ReleasesJobInHand(PromptDequeue):
    """Lets go of the job in hand once RQ is done with it, and of its log context."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            # The job's ids (call, alert) must not tag the worker's lines about the next one.
            structlog.contextvars.clear_contextvars()
        self.job_in_hand = None


def requeue_job_in_hand(redis: Redis, queue_name: str, job_id: str) -> bool:
    """Put the job back at the front of its queue if RQ never marked it started and it is
    in no queue and not scheduled; True if it was put back. An entry the job has in the
    started registry (registered, never started) is removed with the same write."""
    q = queue(queue_name, redis)
    try:
        status = Job.fetch(job_id, connection=redis, serializer=JSONSerializer).get_status()
    except NoSuchJobError:
        log.warning("job_in_hand_gone", queue=queue_name, job_id=job_id)
        return False
    if (status in _ENDED or status == JobStatus.STARTED  # started: the liveness recovery's
            or job_id in q.scheduled_job_registry or q.get_job_position(job_id) is not None):
        return False
    entries = started_entries(redis, q, job_id)
    if not put_back(redis, q, job_id, entries):  # the liveness recovery was first
        return False
    log.warning("job_requeued_after_redis_loss", queue=queue_name, job_id=job_id,
                was_registered=bool(entries))
    return True
