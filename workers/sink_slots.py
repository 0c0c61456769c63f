"""A slow sink delays only itself: each sink may use ``SLOTS_PER_SINK`` worker processes at once.

What this changes in RQ, and why: RQ runs whichever job is first in the delivery queue,
so a receiver that hangs for its whole timeout took every worker process in turn (each
attempt holds one for up to the sink's timeout) and alerts to every other sink, and the
analyses behind them, waited. Before a delivery runs, the worker takes one of its sink's
slots (``callwatch:sink-slots:<sink>``, job ids scored by deadline, taken atomically);
when the sink has none free, the job goes to RQ's scheduled registry for ``DEFER_S``
under the same id, with the same arguments (no attempt spent, no ledger change), and the
worker takes the next job. The slot is freed when the job ends, or at its deadline (the
delivery job timeout) if its worker died.
"""

from __future__ import annotations

import time
from datetime import timedelta

import structlog
from rq.job import Job
from rq.queue import Queue
from rq.utils import now

from service import keys
from workers.dequeue import PromptDequeue
from workers.queues import DELIVERY_JOB_TIMEOUT_S, delivery_sink

#: Worker processes (deployment-wide) one sink may hold at once.
SLOTS_PER_SINK = 2
#: How long a delivery turned away waits before it is queued again.
DEFER_S = 2

log = structlog.get_logger(__name__)

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


class SinkSlots(PromptDequeue):
    """Runs a delivery only in a free slot of its sink; defers it otherwise."""

    slots_per_sink = SLOTS_PER_SINK

    def admit(self, job: Job, queue: Queue) -> bool:
        sink = delivery_sink(job)
        if sink is None or self.take_slot(sink, job.id):
            return super().admit(job, queue)
        queue.schedule_job(job, now() + timedelta(seconds=DEFER_S))
        log.debug("delivery_deferred", sink=sink, job_id=job.id)
        return False

    def take_slot(self, sink: str, job_id: str) -> bool:
        moment = time.time()
        deadline = moment + DELIVERY_JOB_TIMEOUT_S + 5
        taken = self.connection.eval(_TAKE, 1, keys.sink_slots(sink), repr(moment), repr(deadline),
                                     job_id, self.slots_per_sink, DELIVERY_JOB_TIMEOUT_S * 2)
        return bool(taken)

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            sink = delivery_sink(job)
            if sink is not None:
                self.connection.zrem(keys.sink_slots(sink), job.id)
