"""Waiting for the next job: RQ's ``dequeue_job_and_maintain_ttl``, replaced.

What this changes in RQ, and why:

* RQ blocks on ``BLPOP`` for ``worker_ttl - 15`` seconds and, when Redis is unreachable,
  retries inside the same method forever (its own back-off, a log line each time)
  without looking at a stop request: one SIGTERM never ended a worker waiting for
  Redis. Here the pop blocks at most ``STOP_CHECK_S``, the stop flag is looked at
  between pops, and a Redis error is not retried here: it leaves RQ's loop
  (``workers.rq_adaptations.redis_loss``) so that ``workers.rq_adaptations.restart``
  waits for Redis, bounded and interruptible.
* RQ fetches the popped job in a second round trip, and registers it as started in
  later ones; a Redis failure in between lost the job (in no queue and no registry).
  Here the job is held in hand (``job_in_hand``) from the moment it leaves its queue,
  so ``workers.rq_adaptations.restart`` can put it back (``workers.rq_adaptations.job_in_hand``).
* RQ renews the worker's registration before and after every job (three round trips
  after), looks for ``rq suspend`` after every job (one more) and writes the worker's
  state ``idle`` twice between two jobs; here the registration is renewed at most every
  ``BEAT_EVERY_S``, the suspension looked at most every ``STOP_CHECK_S``, and a state is
  written only when it changes (``bench/e2e.py``: 6 of RQ's 14 round trips per job).
* Before a popped job runs, ``admit`` may turn it away (``workers.rq_adaptations.sink_lines``: a slow
  sink already using its share of the deployment's worker processes).

Burst mode and RQ's own idle limit (``max_idle_time``) keep RQ's method.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from rq.exceptions import DequeueTimeout, NoSuchJobError
from rq.job import Job
from rq.queue import Queue
from rq.worker import BaseWorker, WorkerStatus

from workers.rq_adaptations.shutdown import STOP_CHECK_S, StopsCleanly

#: How often the waiting loop renews RQ's worker registration (its TTL is 35 s).
BEAT_EVERY_S = 5.0

log = structlog.get_logger(__name__)


class PromptDequeue(StopsCleanly, BaseWorker):
    """Pops jobs in slices of ``STOP_CHECK_S``, holding each in hand from the pop."""

    #: (queue, job id) of the job taken off its queue and not yet done with.
    job_in_hand: tuple[str, str] | None = None
    _listening = False
    _last_beat = float("-inf")
    _suspension_checked = float("-inf")

    def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                     max_idle_time: int | None = None) -> tuple[Job, Queue] | None:
        """The next job, or None once a stop is requested (which ends RQ's loop as an idle
        timeout does). Raises ``redis.RedisError`` when Redis fails."""
        if timeout is None or max_idle_time is not None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        self.set_state(WorkerStatus.IDLE)
        if not self._listening:  # once per worker: RQ's own INFO lines are quieted
            self._listening = True
            log.info("worker_listening", worker=self.name, queues=self.queue_names())
        by_key = {queue.key: queue for queue in self.queues}
        while not self.stop_requested:
            self.heartbeat()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            self.watch_scheduler_locks()
            try:
                queue_key, job_id = Queue.lpop(self.listen_keys(), STOP_CHECK_S,
                                               connection=self.connection)
            except DequeueTimeout:
                continue
            queue = by_key[queue_key.decode() if isinstance(queue_key, bytes) else queue_key]
            job_id = job_id.decode() if isinstance(job_id, bytes) else job_id
            self.job_in_hand = (queue.name, job_id)
            try:
                job = self.job_class.fetch(job_id, connection=self.connection,
                                           serializer=self.serializer)
            except NoSuchJobError:  # deleted while queued: RQ skips it too
                self.job_in_hand = None
                continue
            if not self.admit(job, queue):
                self.job_in_hand = None
                continue
            self.heartbeat()
            return job, queue
        return None

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's worker heartbeat; the plain call (RQ's loop, before and after every job) at
        most every ``BEAT_EVERY_S``: under load it was three round trips a job for a key
        that lives ``worker_ttl`` + 60 s. A beat with a timeout or into a pipeline is RQ's
        own bookkeeping and always goes through."""
        moment = time.monotonic()
        if timeout is None and pipeline is None:
            if moment - self._last_beat < BEAT_EVERY_S:
                return
            self._last_beat = moment
        super().heartbeat(timeout, pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        """``rq suspend`` looked at most every ``STOP_CHECK_S`` (RQ: after every job)."""
        moment = time.monotonic()
        if moment - self._suspension_checked < STOP_CHECK_S:
            return
        self._suspension_checked = moment
        super().check_for_suspension(burst)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """RQ writes ``idle`` after each job and again as it waits: a state is written only
        when it changes (or into a pipeline, RQ's own transaction)."""
        if pipeline is None and state == self.get_state():
            return
        super().set_state(state, pipeline)

    def watch_scheduler_locks(self) -> None:
        """A look at RQ's scheduler locks between pops (``workers.rq_adaptations.scheduler_locks``)."""

    def listen_keys(self) -> list[str]:
        """The queues to pop from, in priority order."""
        return [queue.key for queue in self.queues]

    def admit(self, job: Job, queue: Queue) -> bool:
        """Whether to run a popped job now; one turned away must have been put elsewhere."""
        return True
