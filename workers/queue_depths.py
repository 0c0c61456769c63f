"""Queue depths for ``/metrics``, read through RQ's own queue and registry objects.

The web edge renders ``callwatch_queue_jobs{queue,state}`` from whatever implements
``service.metrics.QueueDepths``; this is the worker edge's implementation, so the
domain knows neither RQ nor its key layout. Calls waiting in the intake for their
analysis to fall due count as scheduled analyses.
"""

from __future__ import annotations

from datetime import UTC

from redis import Redis
from rq.job import Job
from rq.utils import utcparse

from service.intake import INTAKE_KEY
from workers.queues import ANALYSIS_QUEUE, QUEUES, queue

STATES = ("queued", "scheduled", "started", "failed")


class RQQueueDepths:
    """Jobs per callwatch queue and state, in one round trip; raises ``redis.RedisError``."""

    def read(self, redis: Redis) -> dict[tuple[str, str], int]:
        pipe = redis.pipeline(transaction=False)
        for name in QUEUES:
            q = queue(name, redis)
            pipe.llen(q.key)
            for registry in (q.scheduled_job_registry, q.started_job_registry,
                             q.failed_job_registry):
                pipe.zcard(registry.key)
        pipe.zcard(INTAKE_KEY)
        counts = pipe.execute()
        depths = {(name, state): int(counts[index * len(STATES) + offset])
                  for index, name in enumerate(QUEUES) for offset, state in enumerate(STATES)}
        depths[(ANALYSIS_QUEUE, "scheduled")] += int(counts[-1])
        return depths

    def oldest_queued_at(self, redis: Redis) -> float | None:
        """When the analysis at the head of its queue was queued (None: the queue is empty)."""
        q = queue(ANALYSIS_QUEUE, redis)
        head = redis.lindex(q.key, 0)
        if head is None:
            return None
        job_id = head.decode() if isinstance(head, bytes) else str(head)
        raw = redis.hget(f"{Job.redis_job_namespace_prefix}{job_id}", "enqueued_at")
        if raw is None:
            return None
        queued = utcparse(raw.decode() if isinstance(raw, bytes) else str(raw))
        return (queued if queued.tzinfo else queued.replace(tzinfo=UTC)).timestamp()
