"""Waiting for the next job: RQ's ``dequeue_job_and_maintain_ttl``, replaced.

What this changes in RQ, and why:

* RQ blocks on ``BLPOP`` for ``worker_ttl - 15`` seconds and, when Redis is unreachable,
  retries inside the same method forever (its own back-off, a log line each time)
  without looking at a stop request: one SIGTERM never ended a worker waiting for
  Redis. Here the pop blocks at most ``POP_WAIT_S``, a stop (or a scheduler lock to take)
  ends it at once (``workers.rq_adaptations.pop_wake``), the stop flag is looked at
  between pops, and a Redis error is not retried here: it leaves RQ's loop
  (``workers.rq_adaptations.redis_loss``) so that ``workers.rq_adaptations.restart``
  waits for Redis, bounded and interruptible.
* RQ fetches the popped job in a second round trip, and registers it as started in
  later ones; a Redis failure in between lost the job (in no queue and no registry).
  Here the job is held in hand (``job_in_hand``) from the moment it leaves its queue,
  so ``workers.rq_adaptations.restart`` can put it back (``workers.rq_adaptations.job_in_hand``).
* RQ renews the worker's registration before every job; the renewal here goes through
  ``workers.rq_adaptations.round_trips``, at most every ``BEAT_EVERY_S``.
* Before a popped job runs, ``admit`` may turn it away (``workers.rq_adaptations.sink_lines``: a slow
  sink already using its share of the deployment's worker processes).

Burst mode and RQ's own idle limit (``max_idle_time``) keep RQ's method.
"""

from __future__ import annotations

import contextlib

import structlog
from rq.exceptions import DequeueTimeout, NoSuchJobError
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

from workers.rq_adaptations.pop_wake import POP_WAIT_S, PopWaker
from workers.rq_adaptations.round_trips import FewerRoundTrips
from workers.rq_adaptations.shutdown import StopsCleanly

log = structlog.get_logger(__name__)


class PromptDequeue(StopsCleanly, FewerRoundTrips):
    """Pops jobs in waits of ``POP_WAIT_S`` that a stop ends, holding each job in hand from
    the pop."""

    #: (queue, job id) of the job taken off its queue and not yet done with.
    job_in_hand: tuple[str, str] | None = None
    _listening = False
    pop_waker: PopWaker | None = None

    def register_birth(self) -> None:
        super().register_birth()
        self.pop_waker = PopWaker(self.connection).start()
        self.stop_signal.listeners.append(self.pop_waker.wake)

    def register_death(self) -> None:
        self.stop_waking()
        super().register_death()

    def stop_waking(self) -> None:
        """Stop the waker thread (at death, or when the worker is abandoned)."""
        waker = self.pop_waker
        if waker is not None:
            # Forgotten first: a signal landing in stop() would otherwise set its event again
            # from inside the event's own lock.
            with contextlib.suppress(ValueError):
                self.stop_signal.listeners.remove(waker.wake)
            waker.stop()

    def wake_pop(self) -> None:
        """End the pop in progress (from any thread): something needs the loop now."""
        if self.pop_waker is not None:
            self.pop_waker.wake()

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
                popped = self._pop()
            except DequeueTimeout:
                self.waited_for_jobs()
                continue
            if popped is None:
                continue
            queue_key, job_id = popped
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
            self.watch_scheduler_locks()  # a lock released during the pop waits for no job
            self.heartbeat()
            return job, queue
        return None

    def _pop(self) -> tuple[bytes | str, bytes | str] | None:
        """One blocking pop; None without a pop when a wake came first."""
        waker = self.pop_waker
        if waker is not None:
            waker.popping = True  # before the last look: a wake from now on ends the pop
        try:
            if self.stop_requested or self.wants_loop():
                return None
            return Queue.lpop(self.listen_keys(), POP_WAIT_S, connection=self.connection)
        finally:
            if waker is not None:
                waker.popping = False

    def wants_loop(self) -> bool:
        """Whether something the loop does between pops is due now (no round trip)."""
        return False

    def watch_scheduler_locks(self) -> None:
        """Between pops: take the scheduler locks found stale (``workers.rq_adaptations.scheduler_locks``)."""

    def listen_keys(self) -> list[str]:
        """The queues to pop from, in priority order."""
        return [queue.key for queue in self.queues]

    def admit(self, job: Job, queue: Queue) -> bool:
        """Whether to run a popped job now; one turned away must have been put elsewhere."""
        return True
