"""Putting back the job a worker held when Redis failed it.

What this changes in RQ, and why: RQ takes a job off its queue and registers it as
started in later round trips; when Redis fails in between, the job is in no queue and
no registry, where none of RQ's clean-ups will ever find it. ``workers.rq_adaptations.dequeue`` holds
the job in hand from the pop until RQ is done with it; once Redis answers again,
``workers.rq_adaptations.restart`` calls :func:`requeue_job_in_hand`, which puts it back at the front
of its queue if nothing else will. A job that is registered, queued, scheduled or
ended is left to RQ, its scheduler and the liveness recovery. Running a job twice is
safe anyway (same alert id; the delivery ledger).
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
    """Put the job back at the front of its queue if it is in no queue and no registry;
    True if it was put back."""
    q = queue(queue_name, redis)
    try:
        status = Job.fetch(job_id, connection=redis, serializer=JSONSerializer).get_status()
    except NoSuchJobError:
        log.warning("job_in_hand_gone", queue=queue_name, job_id=job_id)
        return False
    if (status in _ENDED or job_id in q.started_job_registry
            or job_id in q.scheduled_job_registry or q.get_job_position(job_id) is not None):
        return False
    q.push_job_id(job_id, at_front=True)
    log.warning("job_requeued_after_redis_loss", queue=queue_name, job_id=job_id)
    return True
